"""Every wrong deduction found, exactly once, with the right amount.

The acquirer's CSV and the bank's camt.053 come from the simulator
(simulator/settlement_files.py) with its faults injected, are read by the
real readers and imported; the center's events are the same day's. Each
test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from sqlmodel import Session

from posgw.center.db import CenterStore
from posgw.center.settlement.cases import list_cases
from posgw.center.settlement.tables import SettlementCase
from posgw.protocols.settlement import plan_fee_minor
from posgw.simulator.settlement_files import SettlementFaults
from tests.settlement.ledger import Event
from tests.settlement.scenario import (
    FRIDAY,
    clean_day,
    match,
    register,
    sale_of,
    settle_day,
)

PER_MERCHANT = 25


def cases(store: CenterStore) -> list[SettlementCase]:
    with Session(store.engine) as session:
        return list_cases(session)


def only_case(store: CenterStore) -> SettlementCase:
    found = cases(store)
    assert len(found) == 1, [(case.kind, case.merchant_id, case.amount_minor) for case in found]
    return found[0]


def test_a_clean_day_yields_no_finding(store: CenterStore, tmp_path: Path) -> None:
    register(store)
    settle_day(store, tmp_path, clean_day(PER_MERCHANT))
    result = match(store)
    assert sum(result.found.values()) == 0, result.found
    assert cases(store) == []


def test_a_rate_above_the_plan_is_one_finding_of_the_excess(store: CenterStore,
                                                            tmp_path: Path) -> None:
    register(store)
    day = clean_day(PER_MERCHANT)
    settle_day(store, tmp_path, day, SettlementFaults(rate=Decimal("0.0062"),
                                                      fee_merchants=frozenset({"M0002"})))
    match(store)
    case = only_case(store)
    sales = [sale.amount_minor for sale in day.sales if sale.merchant_id == "M0002"]
    excess = sum(plan_fee_minor(amount, Decimal("0.0062")) - plan_fee_minor(amount,
                                                                             Decimal("0.006"))
                 for amount in sales)
    assert (case.kind, case.merchant_id, case.amount_minor) == ("fee_above_plan", "M0002",
                                                                excess)
    assert case.evidence["pattern"] == "a rate above the plan"
    # 0.62 % of each line, each rounded to the dong: 0.62 % of the day, near enough
    assert abs(Decimal(case.evidence["rate_charged"].removesuffix(" %")) - Decimal("0.62")) \
        < Decimal("0.001")


def test_a_fixed_charge_per_transaction_is_one_finding_of_all_of_it(store: CenterStore,
                                                                     tmp_path: Path) -> None:
    register(store)
    settle_day(store, tmp_path, clean_day(PER_MERCHANT),
               SettlementFaults(fixed_fee_minor=100, fee_merchants=frozenset({"M0003"})))
    match(store)
    case = only_case(store)
    assert (case.kind, case.merchant_id, case.amount_minor) == ("fee_above_plan", "M0003",
                                                                100 * PER_MERCHANT)
    assert case.evidence["pattern"] == "a fixed charge of 100 per transaction"


def test_a_sale_settled_twice_is_one_finding_of_its_amount(store: CenterStore,
                                                           tmp_path: Path) -> None:
    register(store)
    day = clean_day(PER_MERCHANT)
    twice = day.sales[7]
    settle_day(store, tmp_path, day, SettlementFaults(duplicate_line=twice.rrn))
    match(store)
    case = only_case(store)
    assert (case.kind, case.merchant_id, case.amount_minor) == ("charged_twice",
                                                                twice.merchant_id,
                                                                twice.amount_minor)
    assert case.evidence["rrn"] == twice.rrn and case.evidence["lines"] == 2


def test_a_credit_that_never_arrives_is_credit_missing_of_the_net(store: CenterStore,
                                                                  tmp_path: Path) -> None:
    register(store)
    files = settle_day(store, tmp_path, clean_day(PER_MERCHANT),
                       SettlementFaults(missing_credit="M0004"))
    match(store)
    case = only_case(store)
    net = sum(line.net_minor for line in files.lines if line.sale.merchant_id == "M0004")
    assert (case.kind, case.merchant_id, case.amount_minor) == ("credit_missing", "M0004", net)
    assert case.evidence["credits"] == []


def test_a_credit_past_its_grace_is_credit_missing_with_the_late_credit_as_evidence(
        store: CenterStore, tmp_path: Path) -> None:
    register(store)
    files = settle_day(store, tmp_path, clean_day(PER_MERCHANT),
                       SettlementFaults(late_credit=("M0001", 5)))
    match(store)
    case = only_case(store)
    [late] = [credit for credit in files.credits if credit.merchant_id == "M0001"]
    assert (case.kind, case.merchant_id, case.amount_minor) == ("credit_missing", "M0001",
                                                                late.amount_minor)
    assert [c["value_date"] for c in case.evidence["credits"]] == [late.value_date.isoformat()]
    assert case.evidence["deadline"] < late.value_date.isoformat()


def test_ledger_side_faults_are_each_found_once(store: CenterStore, tmp_path: Path) -> None:
    """A declined sale the acquirer settled, an approved sale it left out,
    and a line for a sale the center never saw."""
    register(store)
    day = clean_day(PER_MERCHANT)
    declined = replace(day.events[3], status="declined")
    left_out = day.events[10]
    stranger = Event(9_999, FRIDAY, 777_000, merchant_id="M0002", terminal_id="T0002")
    events = [declined if event.n == declined.n else event for event in day.events]
    sales = [sale for sale in day.sales if sale.rrn != left_out.the_rrn] + [sale_of(stranger)]
    settle_day(store, tmp_path, replace(day, events=events, sales=sales))
    match(store)
    found = {(case.kind, case.merchant_id, case.amount_minor) for case in cases(store)}
    assert found == {("failed_but_charged", declined.merchant_id, declined.amount_minor),
                     ("missing_from_settlement", left_out.merchant_id, left_out.amount_minor),
                     ("unknown", "M0002", 777_000)}
    assert len(cases(store)) == 3


def test_matching_again_opens_nothing_new(store: CenterStore, tmp_path: Path) -> None:
    register(store)
    day = clean_day(PER_MERCHANT)
    settle_day(store, tmp_path, day, SettlementFaults(duplicate_line=day.sales[0].rrn,
                                                      missing_credit="M0003"))
    first = match(store)
    second = match(store)
    assert sum(first.opened.values()) == 2
    assert second.found == first.found and sum(second.opened.values()) == 0
    assert len(cases(store)) == 2


def test_a_credit_not_yet_due_is_no_finding(store: CenterStore, tmp_path: Path) -> None:
    from posgw.center.config import SettlementConfig
    from posgw.center.settlement.match import run_matching
    from tests.settlement.scenario import CALENDAR

    register(store)
    settle_day(store, tmp_path, clean_day(5), SettlementFaults(missing_credit="M0001"))
    # Friday's net is due Monday 7th; with one day's grace, a finding from Wednesday 9th.
    for as_of, expected in ((FRIDAY.replace(day=8), 0), (FRIDAY.replace(day=9), 1)):
        result = run_matching(store.engine, FRIDAY, FRIDAY, calendar=CALENDAR,
                              settlement=SettlementConfig(), as_of=as_of)
        assert result.found["credit_missing"] == expected, as_of


def test_returns_undone_sales_and_freezes_settled_as_they_stand_are_clean(
        store: CenterStore, tmp_path: Path) -> None:
    """A refund the acquirer nets (a negative line), a sale reversed and so
    not settled, a freeze still held and not settled, a freeze released and
    settled on its release day: nothing to find."""
    from datetime import timedelta

    from posgw.simulator.settlement_files import write_settlement_files
    from tests.settlement.ledger import insert_events
    from tests.settlement.scenario import CREATED, import_files

    register(store)
    monday = FRIDAY + timedelta(days=3)
    day = clean_day(5)
    extra = [Event(901, FRIDAY, 40_000, status="refund"),
             Event(902, FRIDAY, 55_000), Event(903, FRIDAY, 55_000, status="reversed",
                                               original=902),
             Event(904, FRIDAY, 66_000, status="frozen"),
             Event(905, FRIDAY, 77_000, status="frozen"),
             Event(906, monday, 77_000, status="settled", original=905, rrn="000000000905")]
    insert_events(store.engine, [*day.events, *extra])
    friday_files = write_settlement_files(tmp_path, [*day.sales, sale_of(extra[0])],
                                          created=CREATED)
    import_files(store, friday_files)
    monday_folder = tmp_path / "monday"
    monday_folder.mkdir()
    import_files(store, write_settlement_files(monday_folder, [sale_of(extra[5])],
                                               created=CREATED + timedelta(days=3)))
    result = match(store, FRIDAY, monday)
    assert sum(result.found.values()) == 0, [(c.kind, c.evidence) for c in cases(store)]
