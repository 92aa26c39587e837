"""Stamping the contract's payloads for the outbox: event ids and outbox rows.

The payloads themselves are built by `posgw.protocols.contract` (pure, shared
with the center); the gateway gives each a fresh `event_id` here and commits
it as an outbox row (seq stamped at commit, signed before publishing).
"""

from __future__ import annotations

import uuid
from typing import Any

from posgw.drivers.clock import Clock
from posgw.gateway.store.models import OutboxEvent
from posgw.gateway.store.rows import TableRow, table_row


def new_event_id() -> str:
    return str(uuid.uuid4())


def outbox_row(payload: dict[str, Any], *, topic: str, clock: Clock,
               terminal_id: str | None = None, retain: bool = False) -> TableRow:
    """The outbox row for a built payload; commit it with GroupCommitter."""
    return table_row(OutboxEvent, event_id=payload["event_id"], topic=topic,
                     terminal_id=terminal_id, retain=retain, payload=payload,
                     created_at=clock.utc_now())
