"""Signed case.v1 transitions and command replies, as a gateway publishes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from posgw.gateway.security import GatewayKeys
from posgw.protocols.contract import case_event, command_reply
from tests.center.events import DAY, GATEWAY_ID

CASE_ID = "case-ev-B001-T0001-3"
FROZEN_EVENT = "ev-B001-T0001-3"
CASES_TOPIC = "pos/v1/B001/cases"
REPLY_TOPIC = "pos/v1/B001/cmd/reply"
SHA = "cd" * 32


@dataclass(frozen=True, slots=True)
class Deadlines:
    first_response_due_at: datetime
    expires_at: datetime


def transition(keys: GatewayKeys, seq: int, status: str, *, minutes: int = 0,
               tx_event_ids: tuple[str, ...] = (FROZEN_EVENT,), overdue_at: bool = False,
               evidence: dict[str, Any] | None = None, case_id: str = CASE_ID,
               due: datetime | None = None, branch: str = "B001") -> dict[str, Any]:
    """The case's transition `minutes` after it opened (DAY 10:00), numbered
    `seq`; its first response `due` (by default a day after it opened)."""
    at = DAY + timedelta(minutes=minutes) + (timedelta(hours=25) if overdue_at else timedelta())
    payload = case_event(case_id, status, event_id=f"case-{case_id}-{seq}",
                         terminal_id="T0001", rule="repeated_card", pan_token="ab" * 16,
                         amount_minor=2002, currency="EUR", tx_event_ids=tx_event_ids,
                         branch_id=branch, gateway_id=GATEWAY_ID, occurred_at=at,
                         deadlines=Deadlines(due or DAY + timedelta(hours=24),
                                             DAY + timedelta(days=30)),
                         evidence=evidence)
    return keys.signer.sign({**payload, "seq": seq})


def evidence(sha: str = SHA, name: str = "letter.pdf") -> dict[str, Any]:
    return {"sha256": sha, "size_bytes": 1200, "filename": name, "submitted_by": "risk",
            "submitted_at": "2026-12-01T10:05:00Z", "held_at": "center"}


def reply(keys: GatewayKeys, seq: int, command_id: str, outcome: str = "done",
          detail: str = "case released") -> dict[str, Any]:
    payload = command_reply(command_id, outcome, detail, event_id=f"reply-{seq}",
                            branch_id="B001", gateway_id=GATEWAY_ID, occurred_at=DAY)
    return keys.signer.sign({**payload, "seq": seq})
