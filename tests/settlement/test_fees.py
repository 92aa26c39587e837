"""The fee of one sale: exact rates, half-up rounding to the minor unit,
and the SQL that sums it giving the same numbers as the Python."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from posgw.center.db import CenterStore
from posgw.center.settlement.fees import FeePlan, FeePlanError, fee_sql, parse_rate, percent

DAY = date(2026, 1, 1)


def test_the_standard_plan_is_six_tenths_of_a_percent_with_no_fixed_fee() -> None:
    plan = FeePlan(DAY)
    assert (plan.rate_ppm, plan.fixed_minor, plan.minimum_minor, plan.cap_minor) == (
        6_000, 0, None, None)
    assert plan.in_words() == "0.6 % of the amount, no fixed fee per transaction"


@pytest.mark.parametrize(("amount", "fee"), [
    (125_000, 750),  # exact
    (333_333, 2_000),  # 1999.998 rounds up
    (250, 2),  # 1.5 dong: half rounds up
    (249, 1),  # 1.494 rounds down
    (83, 0),  # 0.498: no fee on a tiny sale without a minimum
])
def test_fees_round_half_up_to_the_minor_unit(amount: int, fee: int) -> None:
    assert FeePlan(DAY).fee_minor(amount) == fee


def test_minimum_and_cap_bound_each_sale_fee_fixed_fee_included() -> None:
    plan = FeePlan(DAY, rate_ppm=6_000, fixed_minor=1_000, minimum_minor=2_000, cap_minor=50_000)
    assert plan.fee_minor(10_000) == 2_000  # 60 + 1,000 raised to the minimum
    assert plan.fee_minor(1_000_000) == 7_000
    assert plan.fee_minor(100_000_000) == 50_000  # 601,000 lowered to the cap


@pytest.mark.parametrize(("typed", "ppm"), [("0.6", 6_000), ("0.6%", 6_000), ("0.62 %", 6_200),
                                            ("1.2345", 12_345), ("0", 0)])
def test_rates_are_parsed_exactly(typed: str, ppm: int) -> None:
    assert parse_rate(typed) == ppm
    assert percent(ppm) == f"{typed.removesuffix('%').strip().removesuffix(' %')} %"


@pytest.mark.parametrize("typed", ["0.12345", "abc", "-1", "11", "nan", ""])
def test_a_rate_that_is_not_one_is_refused(typed: str) -> None:
    with pytest.raises(FeePlanError):
        parse_rate(typed)


def test_a_minimum_above_the_cap_is_refused() -> None:
    with pytest.raises(FeePlanError, match="minimum is above the cap"):
        FeePlan(DAY, minimum_minor=10, cap_minor=5)


@settings(max_examples=60, deadline=None)
@given(amount=st.integers(0, 10**11), rate=st.integers(0, 100_000), fixed=st.integers(0, 10**6),
       minimum=st.none() | st.integers(0, 10**5), cap=st.none() | st.integers(10**5, 10**9))
def test_the_sql_fee_is_the_python_fee(sqlite_engine: CenterStore, amount: int, rate: int,
                                       fixed: int, minimum: int | None,
                                       cap: int | None) -> None:
    expression = fee_sql(":amount", ":rate", ":fixed", ":minimum", ":cap")
    with sqlite_engine.engine.connect() as conn:
        got = conn.scalar(text(f"SELECT {expression}"), {
            "amount": amount, "rate": rate, "fixed": fixed, "minimum": minimum, "cap": cap})
    assert got == FeePlan(DAY, rate, fixed, minimum, cap).fee_minor(amount)
