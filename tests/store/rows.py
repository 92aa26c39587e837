"""Row builders shared by the store and forwarder tests."""

from __future__ import annotations

from datetime import UTC, datetime

from posgw.gateway.store import LedgerEntry, OutboxEvent

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def ledger(n: int, *, terminal: str = "T0001",
           transmission_time: str = "0314093000") -> LedgerEntry:
    return LedgerEntry(event_id=f"ev-{terminal}-{n}", terminal_id=terminal, stan=f"{n:06d}",
                       transmission_time=transmission_time, kind="purchase", status="settled",
                       mti="0200", amount_minor=1000 + n, currency="EUR",
                       pan_masked="476173******0010", pan_token="ab" * 16,
                       response_fields={"39": "00", "38": "A1B2C3"}, occurred_at=NOW)


def outbox(n: int, *, terminal: str = "T0001", topic: str | None = None) -> OutboxEvent:
    return OutboxEvent(event_id=f"ev-{terminal}-{n}", terminal_id=terminal,
                       topic=topic or f"pos/v1/B001/{terminal}/tx",
                       payload={"event_id": f"ev-{terminal}-{n}", "n": n}, created_at=NOW)
