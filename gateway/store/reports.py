"""Read-only summaries of the ledger for operator views (`posgw status`).

Queries only: nothing here writes, so they are safe to run against the
database of a running daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from posgw.gateway.case_policy import UNRESOLVED
from posgw.gateway.store.models import FreezeCase, LedgerEntry, Reconciliation
from posgw.gateway.store.store import Store


@dataclass(frozen=True, slots=True)
class DailyTotal:
    """Transactions of one status in one currency over one UTC day."""

    status: str
    currency: str
    count: int
    amount_minor: int


def utc_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of `day` in UTC: the ledger stores `occurred_at` in UTC."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def daily_totals(store: Store, day: date) -> list[DailyTotal]:
    """Count and sum of `amount_minor` per (status, currency) for one UTC day,
    ordered by status then currency. Statuses with no transaction are absent."""
    start, end = utc_day_bounds(day)
    status, currency, occurred_at = (col(LedgerEntry.status), col(LedgerEntry.currency),
                                     col(LedgerEntry.occurred_at))
    query = (select(status, currency, func.count(),
                    func.coalesce(func.sum(col(LedgerEntry.amount_minor)), 0))
             .where(occurred_at >= start, occurred_at < end)
             .group_by(status, currency)
             .order_by(status, currency))
    with store.session() as session:
        rows = session.execute(query).all()
    return [DailyTotal(str(row_status), str(row_currency), int(count), int(amount))
            for row_status, row_currency, count, amount in rows]


def unreconciled_batches(store: Store, day: date) -> list[Reconciliation]:
    """Batches closed on `day` (UTC) whose totals did not match the ledger."""
    start, end = utc_day_bounds(day)
    closed_at = col(Reconciliation.closed_at)
    query = (select(Reconciliation).where(col(Reconciliation.outcome) == "mismatched")
             .where(closed_at >= start, closed_at < end).order_by(closed_at))
    with store.session() as session:
        return list(session.scalars(query))


def terminal_statement(store: Store, terminal_id: str) -> dict[str, Any]:
    """A terminal's final statement: its transactions by status (count, amount),
    its open freeze cases and the funds they hold, its undelivered events."""
    status, amount = col(LedgerEntry.status), col(LedgerEntry.amount_minor)
    by_status = (select(status, func.count(), func.coalesce(func.sum(amount), 0))
                 .where(col(LedgerEntry.terminal_id) == terminal_id).group_by(status))
    open_cases = (select(func.count()).select_from(FreezeCase)
                  .where(col(FreezeCase.terminal_id) == terminal_id,
                         col(FreezeCase.status).in_(UNRESOLVED)))
    with store.session() as session:
        rows = session.execute(by_status).all()
        cases = int(session.scalar(open_cases) or 0)
        held = _held_amount(session, terminal_id)
    return {"terminal_id": terminal_id,
            "transactions": {str(s): {"count": int(n), "amount_minor": int(a)}
                             for s, n, a in rows},
            "open_cases": cases, "held_amount_minor": held,
            "undelivered_events": store.undelivered_for(terminal_id)}


def _held_amount(session: Session, terminal_id: str) -> int:
    """Frozen sales whose case is unresolved: money neither settled nor returned."""
    open_ids = [case_id.removeprefix("case-") for case_id in session.scalars(
        select(col(FreezeCase.id)).where(col(FreezeCase.terminal_id) == terminal_id,
                                    col(FreezeCase.status).in_(UNRESOLVED)))]
    if not open_ids:
        return 0
    total = session.scalar(select(func.coalesce(func.sum(col(LedgerEntry.amount_minor)), 0))
                           .where(col(LedgerEntry.event_id).in_(open_ids)))
    return int(total or 0)
