"""What checking a payload against its JSON Schema costs the center, per event.

The soak's center stores every event it ingests with its payload; after the
run the same payloads are checked again here, in the bench's process, with
the center's own compiled validators (center/validation.py). The best of a
few rounds is taken: the check itself, not what else this machine does.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from posgw.center.db import CenterStore
from posgw.center.ingest import INGESTED_SCHEMAS
from posgw.center.models import ReceivedEvent
from posgw.center.validation import check_against_schema, compiled_schemas

SAMPLE_EVENTS = 5_000
ROUNDS = 5


def stored_payloads(center_database: str, limit: int = SAMPLE_EVENTS) -> list[dict[str, Any]]:
    center = CenterStore(center_database, create=False)
    try:
        with center.session() as session:
            query = select(ReceivedEvent.payload).limit(limit)  # type: ignore[call-overload]
            return [dict(payload) for payload in session.scalars(query)]
    finally:
        center.close()


def schema_check_us(payloads: list[dict[str, Any]], rounds: int = ROUNDS) -> float:
    """Microseconds to check one payload against its schema (best round)."""
    if not payloads:
        return 0.0
    compiled_schemas()  # compiled once at the center's start, not per event
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for payload in payloads:
            check_against_schema(payload, INGESTED_SCHEMAS)
        best = min(best, time.process_time() - start)
    return best / len(payloads) * 1e6
