"""A business day at the center and at the acquirer, with the files the
simulator writes for it (simulator/settlement_files.py), imported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlmodel import Session

from posgw.center.calendar import WorkingCalendar
from posgw.center.config import SettlementConfig
from posgw.center.db import CenterStore
from posgw.center.settlement.acquirer_csv import read_acquirer_csv
from posgw.center.settlement.camt import read_camt
from posgw.center.settlement.fees import FeePlan
from posgw.center.settlement.imports import (
    ImportResult,
    file_sha256,
    store_acquirer_lines,
    store_bank_credits,
)
from posgw.center.settlement.match import MatchResult, run_matching
from posgw.center.settlement.merchants import add_merchant
from posgw.simulator.settlement_files import (
    ApprovedSale,
    SettlementFaults,
    SettlementFiles,
    simulated_account,
    write_settlement_files,
)
from tests.settlement.ledger import Event, insert_events

FRIDAY = date(2026, 12, 4)
CREATED = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
#: Matching judged well after every value date and grace period.
AS_OF = date(2026, 12, 31)
MERCHANTS = ("M0001", "M0002", "M0003", "M0004")
CALENDAR = WorkingCalendar.of()
NO_FAULTS = SettlementFaults()


@dataclass(frozen=True, slots=True)
class Day:
    events: list[Event]
    sales: list[ApprovedSale]


def terminal_of(merchant: str) -> str:
    return f"T{merchant[1:]}"


def sale_of(event: Event) -> ApprovedSale:
    amount = -event.amount_minor if event.status == "refund" else event.amount_minor
    return ApprovedSale(event.day, event.merchant_id, event.terminal_id, event.the_rrn,
                        event.stan, amount, "VND")


def clean_day(per_merchant: int, day: date = FRIDAY, start: int = 1) -> Day:
    """`per_merchant` sales of each merchant, amounts varied so a rate
    rounds differently line by line; the acquirer settles every one."""
    events = [Event(start + i * len(MERCHANTS) + m, day, 10_000 + 7_919 * i % 2_000_000,
                    merchant_id=merchant, terminal_id=terminal_of(merchant))
              for i in range(per_merchant) for m, merchant in enumerate(MERCHANTS)]
    return Day(events, [sale_of(event) for event in events])


def register(store: CenterStore, merchants: Sequence[str] = MERCHANTS) -> None:
    with Session(store.engine) as session:
        for merchant in merchants:
            add_merchant(session, merchant, f"Merchant {merchant}", "B001",
                         simulated_account(merchant), "VND", FeePlan(date(2026, 1, 1)))


def import_files(store: CenterStore, files: SettlementFiles) -> tuple[ImportResult, ...]:
    csv_data, camt_data = files.acquirer_csv.read_bytes(), files.camt053.read_bytes()
    lines = read_acquirer_csv(csv_data)
    credits = read_camt(camt_data)
    with store.engine.begin() as conn:
        first = store_acquirer_lines(conn, file_sha256(csv_data), files.acquirer_csv.name,
                                     lines)
    with store.engine.begin() as conn:
        second = store_bank_credits(conn, file_sha256(camt_data), files.camt053.name,
                                    credits)
    return first, second


def settle_day(store: CenterStore, folder: Path, day: Day,
               faults: SettlementFaults = NO_FAULTS) -> SettlementFiles:
    """The day's events stored at the center; the acquirer's and the bank's files
    for `day.sales` written (with `faults`) and imported."""
    insert_events(store.engine, day.events)
    files = write_settlement_files(folder, day.sales, faults=faults, created=CREATED)
    import_files(store, files)
    return files


def match(store: CenterStore, first: date = FRIDAY, last: date = FRIDAY) -> MatchResult:
    return run_matching(store.engine, first, last, calendar=CALENDAR,
                        settlement=SettlementConfig(), as_of=AS_OF)
