"""The demo's settlement step over a center database of known events
(SQLite, the demo's): every fault found once with its amount, worked out
here from the events; a mismatch makes the step fail."""

from __future__ import annotations

import io
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from rich.console import Console
from sqlmodel import Session

from posgw.center.db import CenterStore
from posgw.center.settlement.fees import FeePlan
from posgw.center.settlement.imports import store_acquirer_lines
from posgw.center.settlement.merchants import add_merchant
from posgw.center.settlement.records import AcquirerLine
from posgw.sandbox.demo.settlement import settle_demo
from posgw.sandbox.demo.settlement_faults import FAULTS
from posgw.sandbox.demo.settlement_outcome import SettlementOutcome, settlement_tables
from posgw.simulator.settlement_files import simulated_account
from tests.settlement.ledger import Event, insert_events

FRIDAY = date(2026, 12, 4)  # due Monday 7th, deadline Tuesday 8th, the late credit Wednesday


def day_of_sales(merchants: int, per_merchant: int = 6) -> list[Event]:
    """Sales of merchants M0001.. (VND), a refund of the first, and a voided sale."""
    events = [Event(1 + m * per_merchant + i, FRIDAY, 20_000 + 13_577 * (i + m) % 900_000,
                    merchant_id=f"M{m + 1:04d}", terminal_id=f"T{m + 1:04d}")
              for m in range(merchants) for i in range(per_merchant)]
    n = len(events)
    return [*events, Event(n + 1, FRIDAY, 5_000, "refund"),
            Event(n + 2, FRIDAY, 70_000), Event(n + 3, FRIDAY, 70_000, "voided", original=n + 2)]


def center_with(tmp_path: Path, events: list[Event]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    insert_events(store.engine, events)
    store.close()
    return tmp_path


def fee(amount: int, rate: str) -> int:
    if amount <= 0:
        return 0
    return int((Decimal(amount) * Decimal(rate)).quantize(Decimal(1), ROUND_HALF_UP))


def printed(outcome: SettlementOutcome) -> str:
    """What the demo prints of the step."""
    console = Console(file=io.StringIO(), width=200, color_system=None)
    for part in settlement_tables(outcome):
        console.print(part)
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


def duplicated_rrn(workdir: Path) -> str:
    """The RRN the acquirer's CSV carries twice."""
    (csv_path,) = (workdir / "settlement").glob("acquirer-settlement-*.csv")
    rrns = Counter(line.split(",")[3] for line in csv_path.read_text().splitlines()[1:])
    (twice,) = [rrn for rrn, count in rrns.items() if count == 2]
    return twice


def expected_amounts(outcome: SettlementOutcome, events: list[Event],
                     duplicate: str) -> dict[str, int]:
    """Each fault's finding amount, worked out from the events and who got
    which fault: the lines as the faulty acquirer would write them."""
    merchant = {check.fault: check.merchant_id for check in outcome.checks}
    voided = {e.original for e in events if e.status == "voided"}
    lines = []  # (merchant, amount, fee charged)
    for e in events:
        if e.status not in ("settled", "refund") or e.n in voided:
            continue
        amount = -e.amount_minor if e.status == "refund" else e.amount_minor
        charged = fee(amount, "0.0062" if e.merchant_id == merchant["rate"] else "0.006")
        charged += 1 if e.merchant_id == merchant["fixed_fee"] and amount > 0 else 0
        lines += [(e.merchant_id, amount, charged)] * (2 if e.the_rrn == duplicate else 1)

    def excess(who: str) -> int:
        return sum(charged - fee(amount, "0.006") for m, amount, charged in lines if m == who)

    def net(who: str) -> int:
        return sum(amount - charged for m, amount, charged in lines if m == who)

    return {"rate": excess(merchant["rate"]), "fixed_fee": excess(merchant["fixed_fee"]),
            "duplicate_line": next(e.amount_minor for e in events if e.the_rrn == duplicate),
            "missing_credit": net(merchant["missing_credit"]),
            "late_credit": net(merchant["late_credit"])}


def assert_each_fault_found_once(outcome: SettlementOutcome, events: list[Event],
                                 workdir: Path) -> None:
    assert outcome.ok and outcome.refused is None and outcome.skipped is None
    assert (outcome.injected, outcome.found, outcome.unexpected) == (5, 5, 0)
    want = expected_amounts(outcome, events, duplicated_rrn(workdir))
    got = {case.fault: case.amount_minor for case in outcome.findings}
    assert got == want and all(amount > 0 for amount in want.values())
    assert [check.fault for check in outcome.checks] == list(FAULTS)
    kinds = Counter(case.kind for case in outcome.findings)
    assert kinds == {"fee_above_plan": 2, "charged_twice": 1, "credit_missing": 2}


def test_five_merchants_each_carry_one_fault_found_once_with_its_amount(
        tmp_path: Path) -> None:
    events = day_of_sales(5)
    outcome = settle_demo(center_with(tmp_path, events), seed=3)
    assert_each_fault_found_once(outcome, events, tmp_path)
    assert len({check.merchant_id for check in outcome.checks}) == 5
    assert (outcome.business_date, outcome.as_of) == ("2026-12-04", "2026-12-09")
    assert outcome.merchants == outcome.merchants_registered == 5
    assert outcome.currency == "VND"
    late = next(c for c in outcome.findings if c.fault == "late_credit")
    assert late.kind == "credit_missing"


def test_two_merchants_share_the_faults_and_each_is_still_its_own_finding(
        tmp_path: Path) -> None:
    events = day_of_sales(2, per_merchant=10)
    outcome = settle_demo(center_with(tmp_path, events), seed=1)
    assert_each_fault_found_once(outcome, events, tmp_path)
    by_fault = {check.fault: check.merchant_id for check in outcome.checks}
    assert by_fault["rate"] != by_fault["fixed_fee"]
    assert by_fault["missing_credit"] != by_fault["late_credit"]


def test_the_same_seed_injects_the_same_faults_on_the_same_merchants(tmp_path: Path) -> None:
    events = day_of_sales(5)
    first = settle_demo(center_with(tmp_path / "a", events), seed=9)
    again = settle_demo(center_with(tmp_path / "b", events), seed=9)
    assert first.as_json() == again.as_json()
    csv_a, csv_b = ((tmp_path / name / "settlement" / "acquirer-settlement-20261204.csv")
                    for name in ("a", "b"))
    assert csv_a.read_bytes() == csv_b.read_bytes()


def test_one_merchant_is_too_few_and_the_step_says_so_without_failing(tmp_path: Path) -> None:
    outcome = settle_demo(center_with(tmp_path, day_of_sales(1)), seed=1)
    assert outcome.skipped is not None and "--terminals" in outcome.skipped
    assert outcome.ok and outcome.injected == 0
    assert settlement_tables(outcome) == [f"settlement: skipped: {outcome.skipped}"]


def test_a_finding_no_fault_explains_fails_the_step(tmp_path: Path) -> None:
    """A line of a sale the center never heard of, already imported: `unknown`."""
    store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    events = day_of_sales(5)
    insert_events(store.engine, events)
    # A return (no credit is owed for it) of a merchant the demo does not know.
    stray = AcquirerLine(2, FRIDAY, "M0099", "T0099", "999999999999", "999999", -50_000, 0,
                         -50_000, "VND")
    with store.engine.begin() as conn:
        store_acquirer_lines(conn, "f" * 64, "stray.csv", [stray])
    store.close()
    outcome = settle_demo(tmp_path, seed=3)
    assert not outcome.ok and outcome.unexpected == 1
    (odd,) = [case for case in outcome.findings if case.fault is None]
    assert (odd.kind, odd.merchant_id, odd.amount_minor) == ("unknown", "M0099", 50_000)
    shown = printed(outcome)
    assert "none: UNEXPECTED" in shown
    assert "settlement: 5 faults injected, 5 found, 1 unexpected" in shown


def test_a_fault_the_plan_explains_away_is_not_found_and_fails_the_step(
        tmp_path: Path) -> None:
    """Merchants registered beforehand on 0.62 %: the rate fault is no fault."""
    store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    events = day_of_sales(5)
    insert_events(store.engine, events)
    with Session(store.engine) as session:
        for m in range(1, 6):
            add_merchant(session, f"M{m:04d}", f"Shop {m}", "B001",
                         simulated_account(f"M{m:04d}"), "VND",
                         FeePlan(date(2026, 1, 1), rate_ppm=6_200))
    store.close()
    outcome = settle_demo(tmp_path, seed=3)
    assert not outcome.ok and outcome.merchants_registered == 0
    rate = next(check for check in outcome.checks if check.fault == "rate")
    assert rate.case_ids == [] and not rate.found
    assert "a rate of 0.62 %: NOT FOUND" in printed(outcome)


def test_the_summary_json_of_the_step_names_each_check() -> None:
    body = SettlementOutcome(skipped="why").as_json()
    assert {"business_date", "as_of", "merchants", "acquirer_lines", "bank_credits", "checks",
            "findings", "skipped", "refused", "faults_injected", "faults_found", "unexpected",
            "ok"} <= set(body)
