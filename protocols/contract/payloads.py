"""Pure builders of the contract's payloads (schemas/*.json).

The caller passes every id and time: nothing here reads a clock or draws a
random id. Gateway→center builders return the payload without `seq` and
`signature`: the gateway stamps `seq` when the outbox row is committed and
signs just before publishing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from posgw.protocols.contract.vocabulary import (
    CASE_OPEN,
    CASE_SCHEMA,
    COMMAND_REPLY_SCHEMA,
    COMMAND_SCHEMA,
    CONFIRM_SCHEMA,
    GATEWAY_STATUS_SCHEMA,
    MAX_CONFIRMED_IDS,
    MAX_QUARANTINE_REASON,
    MAX_REPLY_DETAIL,
    RECONCILIATION_SCHEMA,
    TERMINAL_STATUS_SCHEMA,
    TX_EVENT_SCHEMA,
    TX_STATUSES,
)

if TYPE_CHECKING:  # only read attributes of: no import of the codec at run time
    from posgw.protocols.normalize import Transaction


class CaseDeadlines(Protocol):
    """When a freeze case's first response is due, and when it expires."""

    @property
    def first_response_due_at(self) -> datetime: ...

    @property
    def expires_at(self) -> datetime: ...


def utc_iso(moment: datetime, timespec: str = "auto") -> str:
    """An aware time as the contract writes it: ISO 8601 with a `Z`."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: payloads carry UTC times")
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def envelope(schema: str, *, event_id: str, branch_id: str, gateway_id: str,
             occurred_at: datetime) -> dict[str, Any]:
    """The fields every gateway→center payload carries (seq comes at commit)."""
    return {"event_id": event_id, "schema": schema, "branch_id": branch_id,
            "gateway_id": gateway_id, "occurred_at": utc_iso(occurred_at)}


def tx_event(tx: Transaction, *, status: str, event_id: str, branch_id: str, gateway_id: str,
             pan_token: str | None, risk: Sequence[str], occurred_at: datetime) -> dict[str, Any]:
    """A transaction event; the card only as `tx.pan_masked` and `pan_token`."""
    if status not in TX_STATUSES:
        raise ValueError(f"status must be one of {', '.join(TX_STATUSES)}")
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


def gateway_status(state: str, *, last_seq: int, event_id: str, branch_id: str,
                   gateway_id: str, occurred_at: datetime,
                   outbox: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Retained birth ("online") and Last Will ("offline"); already carries its seq.

    `outbox` (births only): pending, published_unconfirmed,
    oldest_unconfirmed_age_s, center_silent, as the gateway last counted them.
    """
    payload = {**envelope(GATEWAY_STATUS_SCHEMA, event_id=event_id, branch_id=branch_id,
                          gateway_id=gateway_id, occurred_at=occurred_at),
               "seq": last_seq, "state": state, "last_seq": last_seq}
    if outbox is not None:
        payload["outbox"] = dict(outbox)
    return payload


def terminal_status(terminal_id: str, state: str, *, profile: str | None, event_id: str,
                    branch_id: str, gateway_id: str, occurred_at: datetime) -> dict[str, Any]:
    """Retained on the terminal's status topic: online, offline, draining or decommissioned."""
    return {**envelope(TERMINAL_STATUS_SCHEMA, event_id=event_id, branch_id=branch_id,
                       gateway_id=gateway_id, occurred_at=occurred_at),
            "terminal_id": terminal_id, "state": state, "profile": profile}


def case_event(case_id: str, status: str, *, event_id: str, terminal_id: str, rule: str,
               pan_token: str | None, amount_minor: int, currency: str,
               tx_event_ids: Sequence[str], branch_id: str, gateway_id: str,
               occurred_at: datetime, deadlines: CaseDeadlines | None = None,
               evidence: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A freeze case's transition (or its overdue notice), for the `cases` topic.

    With `deadlines`: when a first response is due, whether it is overdue as
    of `occurred_at` (still open past it, as case.v1 defines `overdue`), when
    the case expires. With `evidence`: the file just recorded (its hash and
    who, never its bytes).
    """
    payload = {**envelope(CASE_SCHEMA, event_id=event_id, branch_id=branch_id,
                          gateway_id=gateway_id, occurred_at=occurred_at),
               "case_id": case_id, "status": status, "terminal_id": terminal_id, "rule": rule,
               "pan_token": pan_token, "amount_minor": amount_minor, "currency": currency,
               "tx_event_ids": list(tx_event_ids)}
    if deadlines is not None:
        due = deadlines.first_response_due_at
        payload.update(first_response_due_at=utc_iso(due),
                       overdue=status == CASE_OPEN and occurred_at >= due,
                       expires_at=utc_iso(deadlines.expires_at))
    if evidence is not None:
        payload["evidence"] = dict(evidence)
    return payload


def reconciliation_event(terminal_id: str, report: Mapping[str, Any], *, event_id: str,
                         branch_id: str, gateway_id: str,
                         occurred_at: datetime) -> dict[str, Any]:
    """A closed batch compared with the ledger (`report`: outcome, totals, differences)."""
    return {**envelope(RECONCILIATION_SCHEMA, event_id=event_id, branch_id=branch_id,
                       gateway_id=gateway_id, occurred_at=occurred_at),
            "terminal_id": terminal_id, **report}


def command_reply(command_id: str, outcome: str, detail: str, *, event_id: str,
                  branch_id: str, gateway_id: str, occurred_at: datetime) -> dict[str, Any]:
    """A command's outcome; a `detail` longer than the schema allows is cut with "..."."""
    if len(detail) > MAX_REPLY_DETAIL:
        detail = detail[:MAX_REPLY_DETAIL - 3] + "..."
    return {**envelope(COMMAND_REPLY_SCHEMA, event_id=event_id, branch_id=branch_id,
                       gateway_id=gateway_id, occurred_at=occurred_at),
            "command_id": command_id, "outcome": outcome, "detail": detail}


def command(branch_id: str, action: str, *, command_id: str, issued_at: datetime,
            **fields: Any) -> dict[str, Any]:
    """A command.v1 payload; `fields` as the schema names them (`case_id`,
    `terminal_id`, `evidence`)."""
    return {"command_id": command_id, "schema": COMMAND_SCHEMA, "branch_id": branch_id,
            "command": action, "issued_at": utc_iso(issued_at, "milliseconds"), **fields}


def confirmation(branch_id: str, gateway_id: str, *, stored: Sequence[str],
                 quarantined: Mapping[str, str], confirm_id: str,
                 issued_at: datetime) -> dict[str, Any]:
    """A confirm.v1 payload (unsigned: the center signs it with its command key).

    `stored`: event_ids the center holds, redeliveries included;
    `quarantined`: event_id -> reason, for signed events it refused to store
    (the gateway stops sending them and keeps the reason).
    """
    count = len(stored) + len(quarantined)
    if not 0 < count <= MAX_CONFIRMED_IDS:
        raise ValueError(f"a confirmation holds 1 to {MAX_CONFIRMED_IDS} event_ids, not {count}")
    refused = [{"event_id": event_id, "reason": _cut(reason, MAX_QUARANTINE_REASON)}
               for event_id, reason in quarantined.items()]
    return {"schema": CONFIRM_SCHEMA, "confirm_id": confirm_id, "branch_id": branch_id,
            "gateway_id": gateway_id, "issued_at": utc_iso(issued_at, "milliseconds"),
            "stored": list(stored), "quarantined": refused}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
