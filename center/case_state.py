"""A freeze case's current state, folded from its case.v1 transitions. Pure.

Transitions arrive out of order and more than once (QoS 1, several center
processes on a shared subscription). The rule: the transition with the
highest `seq` (a gateway numbers its outbox monotonically) says the status,
the overdue flag and the deadlines; what accumulates does so whatever the
order: the tx event ids (the frozen sale's, then the resolution's), the
evidence files (by sha256) and the opening time (the earliest seen). So an
older transition arriving late never moves a case backwards, and a
redelivered one changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from posgw.protocols.contract import CASE_OPEN, CASE_STATUSES

#: Still holding the funds: the queue's cases.
UNRESOLVED = (CASE_OPEN, "evidence_submitted")
RESOLVED = tuple(status for status in CASE_STATUSES if status not in UNRESOLVED)
_T = TypeVar("_T")


def normal_time(text: str) -> str:
    """A UTC ISO 8601 time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`: one width, so
    text order is time order (the gateways drop a zero fraction)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return time_text(moment)


def time_text(moment: datetime) -> str:
    """An aware moment as `normal_time` writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class CaseState:
    case_id: str
    branch_id: str
    gateway_id: str
    terminal_id: str
    rule: str
    status: str
    amount_minor: int | None
    currency: str | None
    pan_token: str | None
    opened_at: str
    first_response_due_at: str | None
    expires_at: str | None
    overdue: bool
    tx_event_ids: tuple[str, ...]
    evidence: tuple[dict[str, Any], ...]
    last_seq: int
    updated_at: str

    def columns(self) -> dict[str, Any]:
        """The center_cases row's values (lists as JSON text)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["tx_event_ids"] = json.dumps(list(self.tx_event_ids))
        values["evidence"] = json.dumps(list(self.evidence), sort_keys=True)
        return values

    @classmethod
    def from_columns(cls, values: dict[str, Any]) -> CaseState:
        fields = {name: values[name] for name in cls.__dataclass_fields__}
        fields["tx_event_ids"] = tuple(json.loads(values["tx_event_ids"] or "[]"))
        fields["evidence"] = tuple(json.loads(values["evidence"] or "[]"))
        fields["overdue"] = bool(values["overdue"])
        return cls(**fields)


def first_state(payload: dict[str, Any]) -> CaseState:
    """The state a case's first transition alone says."""
    return CaseState(
        case_id=payload["case_id"], branch_id=payload["branch_id"],
        gateway_id=payload["gateway_id"], terminal_id=payload["terminal_id"],
        rule=payload["rule"], status=payload["status"],
        amount_minor=payload.get("amount_minor"), currency=payload.get("currency"),
        pan_token=payload.get("pan_token"), opened_at=normal_time(payload["occurred_at"]),
        first_response_due_at=_time_or_none(payload.get("first_response_due_at")),
        expires_at=_time_or_none(payload.get("expires_at")),
        overdue=bool(payload.get("overdue", False)),
        tx_event_ids=tuple(payload.get("tx_event_ids") or ()),
        evidence=_evidence_of(payload), last_seq=int(payload["seq"]),
        updated_at=normal_time(payload["occurred_at"]))


def fold(state: CaseState | None, payload: dict[str, Any]) -> CaseState:
    """`state` after the transition `payload` (a verified case.v1)."""
    arriving = first_state(payload)
    if state is None:
        return arriving
    return replace(
        state if arriving.last_seq <= state.last_seq else _newer(state, arriving),
        opened_at=min(state.opened_at, arriving.opened_at),
        tx_event_ids=_union(state.tx_event_ids, arriving.tx_event_ids),
        evidence=_merged_evidence(state.evidence, arriving.evidence))


def _newer(state: CaseState, arriving: CaseState) -> CaseState:
    """`arriving` says the status; what it leaves out, the state keeps."""
    return replace(
        arriving,
        amount_minor=_either(arriving.amount_minor, state.amount_minor),
        currency=_either(arriving.currency, state.currency),
        pan_token=_either(arriving.pan_token, state.pan_token),
        first_response_due_at=_either(arriving.first_response_due_at,
                                      state.first_response_due_at),
        expires_at=_either(arriving.expires_at, state.expires_at))


def _either(first: _T | None, second: _T | None) -> _T | None:
    return first if first is not None else second


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """In order of first appearance; the frozen sale's id leads in every transition."""
    return tuple(dict.fromkeys((*first, *second)))


def _merged_evidence(first: tuple[dict[str, Any], ...],
                     second: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    by_hash = {item["sha256"]: item for item in (*second, *first)}  # the first seen wins
    return tuple(sorted(by_hash.values(), key=lambda item: (item.get("submitted_at", ""),
                                                             item["sha256"])))


def _evidence_of(payload: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    evidence = payload.get("evidence")
    return (dict(evidence),) if isinstance(evidence, dict) else ()


def _time_or_none(text: object) -> str | None:
    return normal_time(text) if isinstance(text, str) else None
