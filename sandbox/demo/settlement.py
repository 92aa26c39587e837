"""`posgw demo`'s settlement step, after the traffic: the day is settled
with a fault of each kind, and matching must find each one exactly once.

Over the demo's center database (SQLite): register the merchants with the
standard plan; from the sales the center holds as owed (the matcher's own
definition, center/settlement/match_lines.py), write the acquirer's CSV
and the bank's camt.053 with h10's writers and the faults of
settlement_faults.py; import both through the readers and stores
`posgw center settlement import` uses; match the day as of the day the late
credit arrives; compare the cases opened with the faults injected.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from posgw.center.calendar import WorkingCalendar
from posgw.center.config import SettlementConfig
from posgw.center.db import CenterStore
from posgw.center.settlement.acquirer_csv import AcquirerCsvError, csv_bytes, read_acquirer_csv
from posgw.center.settlement.camt import CamtError, camt_bytes, read_camt
from posgw.center.settlement.cases import list_cases
from posgw.center.settlement.fees import FeePlan
from posgw.center.settlement.imports import file_sha256, store_acquirer_lines, store_bank_credits
from posgw.center.settlement.match import run_matching
from posgw.center.settlement.match_lines import OWED, ledger_cte, window
from posgw.center.settlement.merchants import add_merchant
from posgw.center.settlement.tables import Merchant
from posgw.sandbox.demo.settlement_faults import (
    MIN_MERCHANTS,
    CreditDates,
    choose,
    expected_findings,
    faulty_credits,
    faulty_lines,
)
from posgw.sandbox.demo.settlement_outcome import SettlementOutcome, judge
from posgw.sandbox.demo.stack import BRANCH
from posgw.simulator.settlement_files import (
    ApprovedSale,
    SettledLine,
    SimulatedCredit,
    camt053_bytes,
    simulated_account,
    write_acquirer_csv,
)

#: The center's defaults: T+1 working day, one working day of grace, no holidays.
CALENDAR = WorkingCalendar.of()
SETTLEMENT = SettlementConfig()


def settle_demo(workdir: Path, seed: int) -> SettlementOutcome:
    """Settle the demo's busiest business day with every fault injected once."""
    store = CenterStore(f"sqlite:///{workdir / 'center.db'}")
    try:
        return _settle(store.engine, workdir / "settlement", seed)
    finally:
        store.close()


def _settle(engine: Engine, folder: Path, seed: int) -> SettlementOutcome:
    day = business_day(engine)
    if day is None:
        return SettlementOutcome(skipped="no sale reached the center")
    sales = owed_sales(engine, day)
    dates = CreditDates.of(day, CALENDAR, SETTLEMENT.value_days, SETTLEMENT.credit_grace_days)
    injection = choose(sales, seed, dates) if sales else None
    if injection is None:
        return SettlementOutcome(
            business_date=day.isoformat(),
            skipped=f"the faults need sales of {MIN_MERCHANTS} merchants or more "
                    "(each terminal is its own merchant: add --terminals)")
    merchants, registered = register_merchants(engine, day)
    lines = faulty_lines(sales, injection)
    credits = faulty_credits(
        lines, injection, lambda paid: CALENDAR.add_working_days(paid, SETTLEMENT.value_days))
    outcome = SettlementOutcome(business_date=day.isoformat(), as_of=dates.late.isoformat(),
                                currency=sales[0].currency, merchants=merchants,
                                merchants_registered=registered,
                                acquirer_lines=len(lines), bank_credits=len(credits))
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, camt_path = write_files(folder, day, lines, credits,
                                      created=datetime.combine(dates.late, time(18), UTC))
    outcome.refused = import_files(engine, csv_path, camt_path)
    run_matching(engine, day, day, calendar=CALENDAR, settlement=SETTLEMENT, as_of=dates.late)
    with Session(engine) as session:
        cases = list_cases(session, first=day, last=day)
    outcome.checks, outcome.findings = judge(expected_findings(lines, injection), cases)
    return outcome


def business_day(engine: Engine) -> date | None:
    """The UTC day of most sales (a demo run across midnight has two)."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT occurred_date FROM center_events WHERE status = 'settled' "
            "GROUP BY occurred_date ORDER BY COUNT(*) DESC, occurred_date DESC LIMIT 1")).first()
    return date.fromisoformat(row[0]) if row is not None else None


def owed_sales(engine: Engine, day: date) -> list[ApprovedSale]:
    """What the acquirer approved and settles for `day`: the sales not undone
    and the merchants' refunds (negative), as matching counts them owed."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            f"WITH {ledger_cte(conn.dialect.name)} SELECT merchant_id, terminal_id, rrn, stan, "
            f"signed, currency FROM ledger WHERE standing = {OWED} AND occurred_date = :first "
            "AND merchant_id IS NOT NULL ORDER BY merchant_id, terminal_id, stan, rrn"),
            window(day, day)).all()
    return [ApprovedSale(day, merchant, terminal, rrn, stan, int(signed), currency)
            for merchant, terminal, rrn, stan, signed, currency in rows]


def register_merchants(engine: Engine, day: date) -> tuple[int, int]:
    """Every merchant with an event that day, on the standard plan (0.6 %,
    no fixed fee) from that day; one registered before is left as it is.
    Returns how many merchants, and how many were registered now."""
    with engine.connect() as conn:
        merchants = conn.execute(text(
            "SELECT merchant_id, MIN(terminal_id), MIN(currency) FROM center_events "
            "WHERE occurred_date = :day AND merchant_id IS NOT NULL GROUP BY merchant_id"),
            {"day": day.isoformat()}).all()
    registered = 0
    with Session(engine) as session:
        for merchant, terminal, currency in merchants:
            if session.get(Merchant, merchant) is None:
                add_merchant(session, merchant, f"Demo shop at terminal {terminal}", BRANCH,
                             simulated_account(merchant), currency, FeePlan(day))
                registered += 1
    return len(merchants), registered


def write_files(folder: Path, day: date, lines: Sequence[SettledLine],
                credits: Sequence[SimulatedCredit], *, created: datetime) -> tuple[Path, Path]:
    """The acquirer's CSV and the bank's camt.053, named as the simulator names them."""
    csv_path = folder / f"acquirer-settlement-{day:%Y%m%d}.csv"
    camt_path = folder / f"bank-camt053-{day:%Y%m%d}.xml"
    write_acquirer_csv(csv_path, lines)
    camt_path.write_bytes(camt053_bytes(credits, created=created))
    return csv_path, camt_path


def import_files(engine: Engine, csv_path: Path, camt_path: Path) -> str | None:
    """Read, then store in one transaction each, as `posgw center settlement
    import acquirer-csv|camt053` does; the reason when a reader refuses a file."""
    try:
        csv_data, camt_data = csv_bytes(csv_path), camt_bytes(camt_path)
        lines = read_acquirer_csv(csv_data)
        credits = read_camt(camt_data)
    except (AcquirerCsvError, CamtError) as exc:
        return str(exc)
    with engine.begin() as conn:
        store_acquirer_lines(conn, file_sha256(csv_data), csv_path.name, lines)
    with engine.begin() as conn:
        store_bank_credits(conn, file_sha256(camt_data), camt_path.name, credits)
    return None
