"""A center's events, written straight into its table in bulk.

Settlement reads `center_events` as ingest left it; these tests are about
settlement, not ingest (tests/center covers that), so events are inserted
directly, thousands per statement: a day of 100,000 sales in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from posgw.center.models import ReceivedEvent
from posgw.center.pg_schema import month_of, partition_ddl
from posgw.center.settlement.records import AcquirerLine
from posgw.center.writer import table_of

BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Event:
    n: int  # makes event_id, seq, STAN and RRN unique
    day: date
    amount_minor: int
    status: str = "settled"
    merchant_id: str = "M0001"
    terminal_id: str = "T0001"
    original: int | None = None  # n of the event this one undoes or resolves
    rrn: str | None = field(default=None)

    @property
    def event_id(self) -> str:
        return f"ev-{self.n}"

    @property
    def stan(self) -> str:
        return f"{self.n % 1_000_000:06d}"

    @property
    def the_rrn(self) -> str:
        return self.rrn if self.rrn is not None else f"{self.n:012d}"


def row_of(event: Event) -> dict[str, Any]:
    payload: dict[str, Any] = {"status": event.status}
    if event.original is not None:
        payload["original_event_id"] = f"ev-{event.original}"
    return {"event_id": event.event_id, "topic": "pos/v1/B001/T/tx", "branch_id": "B001",
            "gateway_id": "gw-1", "seq": event.n, "status": event.status,
            "kind": "purchase", "terminal_id": event.terminal_id,
            "merchant_id": event.merchant_id, "stan": event.stan, "rrn": event.the_rrn,
            "auth_code": "A1B2C3", "response_code": "00", "amount_minor": event.amount_minor,
            "currency": "VND", "pan_masked": "476173******0010", "pan_last4": "0010",
            "pan_token": None, "entry_mode": "chip",
            "occurred_at": f"{event.day.isoformat()}T10:00:00Z",
            "occurred_date": event.day.isoformat(), "payload": payload,
            "received_at": datetime.now(UTC)}


def insert_events(engine: Engine, events: Iterable[Event]) -> None:
    rows = [row_of(event) for event in events]
    table = table_of(ReceivedEvent)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for month in {month_of(row["occurred_date"]) for row in rows}:
                assert month is not None
                conn.execute(text(partition_ddl(month)))
        for start in range(0, len(rows), BATCH):
            conn.execute(insert(table), rows[start:start + BATCH])


def line_of(event: Event, line_no: int, *, fee_minor: int | None = None,
            amount_minor: int | None = None, rate_ppm: int = 6000) -> AcquirerLine:
    """The acquirer's line for `event` as a clean acquirer writes it (refunds negative)."""
    amount = amount_minor if amount_minor is not None else (
        -event.amount_minor if event.status == "refund" else event.amount_minor)
    fee = fee_minor if fee_minor is not None else (
        (amount * rate_ppm + 500_000) // 1_000_000 if amount > 0 else 0)
    return AcquirerLine(line_no, event.day, event.merchant_id, event.terminal_id, event.the_rrn,
                        event.stan, amount, fee, amount - fee, "VND")


def clean_lines(events: Sequence[Event]) -> list[AcquirerLine]:
    return [line_of(event, number) for number, event in enumerate(events, 2)]
