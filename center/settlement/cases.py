"""Findings become complaint cases, once each.

A finding names what it is about in its `key` (kind and subject: a
transaction, or a merchant's day); the cases table holds each key once, so
matching run again over the same days opens nothing new. A case has the
same first-response clock as a freeze case: 24 hours from opening.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from posgw.center.settlement.tables import SettlementCase
from posgw.center.writer import table_of

#: The complaint desk's promise, as for freeze cases (gateway/case_policy.py).
FIRST_RESPONSE = timedelta(hours=24)
CASE_PREFIX = "S-"
MAX_NOTE = 1000
OPEN, RESOLVED = "open", "resolved"
FINDING_KINDS = ("fee_above_plan", "charged_twice", "failed_but_charged",
                 "missing_from_settlement", "credit_missing", "credit_short", "unknown")


class CaseError(ValueError):
    """A case action refused: the message says why."""


class NoSuchCase(CaseError):
    """The case named does not exist."""


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # one of FINDING_KINDS
    key: str  # what it is about: found once
    merchant_id: str
    business_date: date
    amount_minor: int  # the money at stake, positive
    currency: str
    evidence: dict[str, Any] = field(default_factory=dict)


def case_id(row_id: int) -> str:
    return f"{CASE_PREFIX}{row_id}"


def open_cases(conn: Connection, findings: Sequence[Finding],
               now: datetime | None = None) -> int:
    """Open a case for each finding not found before; returns how many opened."""
    if not findings:
        return 0
    opened_at = now or datetime.now(UTC)
    table = table_of(SettlementCase)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(table).on_conflict_do_nothing(index_elements=["finding_key"])
                 .returning(table.c.id))
    opened = 0
    for finding in findings:
        result = conn.execute(statement.values(
            finding_key=finding.key[:200], kind=finding.kind, merchant_id=finding.merchant_id,
            business_date=finding.business_date.isoformat(), amount_minor=finding.amount_minor,
            currency=finding.currency, evidence=finding.evidence, opened_at=opened_at,
            first_response_due_at=opened_at + FIRST_RESPONSE, status=OPEN))
        opened += len(result.fetchall())  # a row back: inserted, not already there
    return opened


def list_cases(session: Session, *, only_open: bool = False, merchant_id: str | None = None,
               first: date | None = None, last: date | None = None,
               limit: int = 1000, newest_first: bool = False) -> list[SettlementCase]:
    """Cases in the order they were opened (`newest_first`: the other way),
    at most `limit` of them from that end."""
    query = select(SettlementCase)
    if only_open:
        query = query.where(col(SettlementCase.status) == OPEN)
    if merchant_id is not None:
        query = query.where(col(SettlementCase.merchant_id) == merchant_id)
    if first is not None:
        query = query.where(col(SettlementCase.business_date) >= first.isoformat())
    if last is not None:
        query = query.where(col(SettlementCase.business_date) <= last.isoformat())
    order = col(SettlementCase.id).desc() if newest_first else col(SettlementCase.id)
    return list(session.scalars(query.order_by(order).limit(limit)))


def resolve_case(session: Session, case: str, note: str, by: str,
                 now: datetime | None = None) -> SettlementCase:
    """Record a case's resolution: who, when, and what was done."""
    note = note.strip()
    if not note or len(note) > MAX_NOTE:
        raise CaseError(f"--note: say what was done, 1 to {MAX_NOTE} characters")
    number = case.upper().removeprefix(CASE_PREFIX)
    row = session.get(SettlementCase, int(number)) if number.isdigit() else None
    if row is None:
        raise NoSuchCase(f"no settlement case {case} (they look like {CASE_PREFIX}17)")
    if row.status == RESOLVED:
        raise CaseError(f"{case_id(row.id or 0)} was resolved on "
                        f"{row.resolved_at:%Y-%m-%d} by {row.resolved_by}")
    row.status, row.resolution = RESOLVED, note
    row.resolved_at, row.resolved_by = now or datetime.now(UTC), by[:64]
    session.add(row)
    session.commit()
    return row


def is_overdue(row: SettlementCase, now: datetime) -> bool:
    due = row.first_response_due_at
    if due.tzinfo is None:  # SQLite hands timezone-aware columns back naive (UTC)
        due = due.replace(tzinfo=UTC)
    return row.status == OPEN and now > due
