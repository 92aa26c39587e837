"""Payload builders for gateway→center events (schemas/*.json).

Builders return the payload without `seq` and `signature`: the group
committer stamps `seq` when the outbox row is committed, the forwarder signs
just before publishing (Ed25519 is deterministic, so a re-publish carries
the same signature).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from posgw.drivers.clock import Clock
from posgw.gateway.case_policy import CaseDeadlines, is_overdue
from posgw.gateway.store.models import OutboxEvent
from posgw.gateway.store.rows import TableRow, table_row
from posgw.protocols.normalize import Transaction

TX_EVENT_SCHEMA = "tx-event.v1"
TERMINAL_STATUS_SCHEMA = "terminal-status.v1"
GATEWAY_STATUS_SCHEMA = "gateway-status.v1"
CASE_SCHEMA = "case.v1"
COMMAND_REPLY_SCHEMA = "command-reply.v1"
RECONCILIATION_SCHEMA = "reconciliation.v1"
TX_STATUSES = frozenset({"settled", "frozen", "reversed", "voided", "refund", "declined"})


def new_event_id() -> str:
    return str(uuid.uuid4())


def utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: events carry UTC times")
    return moment.isoformat().replace("+00:00", "Z")


def envelope(schema: str, *, event_id: str, branch_id: str, gateway_id: str,
             occurred_at: datetime) -> dict[str, Any]:
    """The fields every gateway→center payload carries (seq comes at commit)."""
    return {"event_id": event_id, "schema": schema, "branch_id": branch_id,
            "gateway_id": gateway_id, "occurred_at": utc_iso(occurred_at)}


def tx_event(tx: Transaction, *, status: str, event_id: str, branch_id: str, gateway_id: str,
             pan_token: str | None, risk: Sequence[str], occurred_at: datetime) -> dict[str, Any]:
    """A transaction event; the card only as `tx.pan_masked` and `pan_token`."""
    if status not in TX_STATUSES:
        raise ValueError(f"status must be one of {sorted(TX_STATUSES)}")
    return {
        **envelope(TX_EVENT_SCHEMA, event_id=event_id, branch_id=branch_id,
                   gateway_id=gateway_id, occurred_at=occurred_at),
        "status": status, "kind": tx.kind.value,
        "terminal_id": tx.terminal_id or "", "merchant_id": tx.merchant_id or "",
        "stan": tx.stan or "", "rrn": tx.rrn, "auth_code": tx.auth_code,
        "response_code": tx.response_code, "amount_minor": tx.amount_minor or 0,
        "currency": tx.currency or "", "pan_masked": tx.pan_masked, "pan_token": pan_token,
        "entry_mode": tx.entry_mode.value, "risk": list(risk),
    }


def gateway_status(state: str, *, last_seq: int, branch_id: str, gateway_id: str,
                   clock: Clock) -> dict[str, Any]:
    return {**envelope(GATEWAY_STATUS_SCHEMA, event_id=new_event_id(), branch_id=branch_id,
                       gateway_id=gateway_id, occurred_at=clock.utc_now()),
            "seq": last_seq, "state": state, "last_seq": last_seq}


def terminal_status(terminal_id: str, state: str, *, profile: str | None, branch_id: str,
                    gateway_id: str, occurred_at: datetime) -> dict[str, Any]:
    """Retained on the terminal's status topic: online, offline or decommissioned."""
    return {**envelope(TERMINAL_STATUS_SCHEMA, event_id=new_event_id(), branch_id=branch_id,
                       gateway_id=gateway_id, occurred_at=occurred_at),
            "terminal_id": terminal_id, "state": state, "profile": profile}


def case_event(case_id: str, status: str, *, terminal_id: str, rule: str,
               pan_token: str | None, amount_minor: int, currency: str,
               tx_event_ids: Sequence[str], branch_id: str, gateway_id: str,
               occurred_at: datetime, deadlines: CaseDeadlines | None = None,
               evidence: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A freeze case's transition (or its overdue notice), for the `cases` topic.

    With `deadlines`: when a first response is due, whether it is overdue as
    of `occurred_at`, when the case expires. With `evidence`: the file just
    recorded (its hash and who, never its bytes).
    """
    payload = {**envelope(CASE_SCHEMA, event_id=new_event_id(), branch_id=branch_id,
                          gateway_id=gateway_id, occurred_at=occurred_at),
               "case_id": case_id, "status": status, "terminal_id": terminal_id, "rule": rule,
               "pan_token": pan_token, "amount_minor": amount_minor, "currency": currency,
               "tx_event_ids": list(tx_event_ids)}
    if deadlines is not None:
        payload.update(
            first_response_due_at=utc_iso(deadlines.first_response_due_at),
            overdue=is_overdue(status, deadlines.first_response_due_at, occurred_at),
            expires_at=utc_iso(deadlines.expires_at))
    if evidence is not None:
        payload["evidence"] = dict(evidence)
    return payload


def reconciliation_event(terminal_id: str, report: Mapping[str, Any], *, event_id: str,
                         branch_id: str, gateway_id: str,
                         occurred_at: datetime) -> dict[str, Any]:
    """A closed batch compared with the ledger (pipeline/settlement.py builds `report`)."""
    return {**envelope(RECONCILIATION_SCHEMA, event_id=event_id, branch_id=branch_id,
                       gateway_id=gateway_id, occurred_at=occurred_at),
            "terminal_id": terminal_id, **report}


def outbox_row(payload: dict[str, Any], *, topic: str, clock: Clock,
               terminal_id: str | None = None, retain: bool = False) -> TableRow:
    """The outbox row for a built payload; commit it with GroupCommitter."""
    return table_row(OutboxEvent, event_id=payload["event_id"], topic=topic,
                     terminal_id=terminal_id, retain=retain, payload=payload,
                     created_at=clock.utc_now())
