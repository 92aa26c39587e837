"""What the ingest writes, as values: one stored payload, one quarantined one.

The writers (center/writer.py for SQLite, center/pg_writer.py for
PostgreSQL) take these and turn them into rows of center_events,
center_reconciliations and center_quarantine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from posgw.protocols.contract import RECONCILIATION_SCHEMA
from posgw.protocols.redact import mask_pan

#: Quarantined payloads are kept up to this size: enough to inspect, bounded.
MAX_QUARANTINE_TEXT = 16_384
#: Of a payload no gateway signed (junk, a flood, a forgery) only the start:
#: enough to recognise it, and 5,000 of them no longer make 80 MB.
MAX_UNSIGNED_TEXT = 2_048
MAX_TOPIC = 256  # the column sizes of QuarantinedPayload
MAX_REASON = 256
MAX_SOURCE = 64
#: PANs are 13-19 digits in practice (ISO/IEC 7812); RRNs (12) stay readable.
#: Printed card numbers are grouped by spaces or dashes ("4761 7300 0000
#: 0010"): a single separator between digits does not end the run.
_LONG_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12,}")


@dataclass(frozen=True, slots=True)
class StoreRow:
    """A verified payload to store once per event_id; `raw` is the message as
    received (valid JSON of `payload`), stored as the payload column's text."""

    topic: str
    payload: dict[str, Any]
    raw: bytes

    @property
    def event_id(self) -> str:
        return str(self.payload["event_id"])

    @property
    def is_reconciliation(self) -> bool:
        return self.payload.get("schema") == RECONCILIATION_SCHEMA


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    topic: str
    reason: str
    kind: str
    raw: bytes
    #: Whom the row is counted against (center/quarantine_cap.py): the
    #: topic's branch level.
    source: str = ""
    keep_bytes: int = MAX_QUARANTINE_TEXT

    def values(self, received_at: datetime) -> dict[str, Any]:
        """The center_quarantine row: bounded, card numbers masked."""
        return {"topic": self.topic[:MAX_TOPIC], "reason": self.reason[:MAX_REASON],
                "kind": self.kind, "source": self.source[:MAX_SOURCE],
                "payload_text": self.stored_text(), "received_at": received_at}

    def stored_text(self) -> str:
        return _without_card_numbers(
            self.raw[:self.keep_bytes].decode("utf-8", errors="replace"))


class ReplayedSeq(Exception):
    """An event whose (gateway, seq) is stored under another event_id."""

    def __init__(self, gateway_id: str, seq: int) -> None:
        super().__init__(f"seq {seq} of gateway {gateway_id} was already received "
                         "under another event_id (replay or forgery)")


class NotStorable(Exception):
    """A signed payload the tables cannot hold (a value too long, say); the
    message names the database's error class, never a value."""


class BatchRefused(Exception):
    """A batch hit a constraint other than the event_id conflict: nothing of it
    was written; store it again one row at a time."""


class StoreUnavailable(Exception):
    """The database cannot be reached or failed: nothing of the batch was
    written (and nothing may be acknowledged)."""


def event_values(topic: str, payload: dict[str, Any],
                 received_at: datetime | None = None) -> dict[str, Any]:
    """A transaction event's center_events row (without the payload text)."""
    masked = payload.get("pan_masked")
    occurred_at = str(payload["occurred_at"])
    return {
        "event_id": payload["event_id"], "topic": topic,
        "branch_id": payload["branch_id"], "gateway_id": payload["gateway_id"],
        "seq": int(payload["seq"]), "status": payload["status"], "kind": payload["kind"],
        "terminal_id": payload["terminal_id"], "merchant_id": payload.get("merchant_id", ""),
        "stan": payload["stan"], "rrn": payload.get("rrn"), "auth_code": payload.get("auth_code"),
        "response_code": payload.get("response_code"),
        "amount_minor": int(payload["amount_minor"]), "currency": payload["currency"],
        "pan_masked": masked, "pan_last4": masked[-4:] if masked else None,
        "pan_token": payload.get("pan_token"), "entry_mode": payload.get("entry_mode", "unknown"),
        "occurred_at": occurred_at, "occurred_date": occurred_at[:10],
        "payload": payload, "received_at": received_at or datetime.now(UTC),
    }


def reconciliation_values(topic: str, payload: dict[str, Any],
                          received_at: datetime | None = None) -> dict[str, Any]:
    """A gateway's batch report's center_reconciliations row."""
    return {"event_id": payload["event_id"], "topic": topic, "branch_id": payload["branch_id"],
            "gateway_id": payload["gateway_id"], "seq": int(payload["seq"]),
            "terminal_id": payload["terminal_id"], "outcome": payload["outcome"],
            "batch_closed_at": payload["batch_closed_at"], "payload": payload,
            "received_at": received_at or datetime.now(UTC)}


def _without_card_numbers(text: str) -> str:
    """A rejected payload comes from an untrusted or broken sender and may hold
    a PAN in clear: mask every long run of digits before it is stored."""
    return _LONG_DIGIT_RUN.sub(lambda match: mask_pan(re.sub(r"[ -]", "", match.group())),
                               text)
