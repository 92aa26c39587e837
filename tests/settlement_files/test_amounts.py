"""What the settlement files share: decimal text <-> minor units by the
currency's exponent, the plan's fee rule, account masking."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posgw.protocols.currency import decimal_text, parse_decimal_minor
from posgw.protocols.redact import mask_account
from posgw.protocols.settlement import REMITTANCE_PATTERN, plan_fee_minor, remittance_text


@given(st.integers(-10**15, 10**15), st.sampled_from(["VND", "USD", "EUR", "KWD", "JPY"]))
def test_decimal_text_reads_back_exactly(amount_minor: int, currency: str) -> None:
    text = decimal_text(amount_minor, currency)
    assert parse_decimal_minor(text, currency, exact=True) == amount_minor


@pytest.mark.parametrize("text, currency, minor", [
    ("125.00", "USD", 12_500), ("125000", "VND", 125_000), ("-20.00", "USD", -2_000),
    ("1.234", "KWD", 1_234), ("0.5", "EUR", 50), ("1.500", "EUR", 150), ("7", "EUR", 700),
])
def test_decimal_text_in_minor_units(text: str, currency: str, minor: int) -> None:
    assert parse_decimal_minor(text, currency) == minor


@pytest.mark.parametrize("text", ["1.505", "1e3", "+1", "1,000", "", ".", "1.", "-", "٣", " 1"])
def test_anything_but_plain_decimal_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_decimal_minor(text, "EUR")


@pytest.mark.parametrize("amount, rate, fixed, fee", [
    (12_550, "0.006", 0, 75),  # 75.3 rounds down
    (2_500_083, "0.006", 0, 15_000),  # 15,000.498
    (250, "0.006", 0, 2),  # 1.5 rounds half up
    (1_250_000, "0.0062", 0, 7_750),
    (12_500, "0.006", 100, 175),  # a fixed 1.00 on top
    (-2_000, "0.006", 100, 0),  # a return carries no fee
])
def test_plan_fee_is_rate_times_amount_rounded_half_up_plus_fixed(amount: int, rate: str,
                                                                   fixed: int, fee: int) -> None:
    assert plan_fee_minor(amount, Decimal(rate), fixed) == fee


def test_remittance_text_is_what_the_pattern_reads() -> None:
    from datetime import date

    match = REMITTANCE_PATTERN.search(remittance_text("M0001", date(2026, 12, 4)))
    assert match is not None and match.groups() == ("M0001", "2026-12-04")


@pytest.mark.parametrize("account, masked", [
    ("SE4550000000054910000003", "SE45****************0003"),
    ("97046085102999", "9704******2999"),
    ("12345678", "********"),
])
def test_account_keeps_first_and_last_four(account: str, masked: str) -> None:
    assert mask_account(account) == masked
