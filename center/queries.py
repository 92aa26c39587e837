"""The questions the center answers: "did payment X arrive?" and daily totals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from center.models import ReceivedEvent

#: Statuses whose amount counts towards a day's settled total.
SETTLED_STATUSES = ("settled",)


@dataclass(frozen=True, slots=True)
class DailyTotal:
    day: str
    branch_id: str
    terminal_id: str
    status: str
    currency: str
    count: int
    amount_minor: int


def by_rrn(session: Session, rrn: str) -> list[ReceivedEvent]:
    return list(session.scalars(select(ReceivedEvent).where(ReceivedEvent.rrn == rrn)))


def by_terminal_stan(session: Session, terminal_id: str, stan: str) -> list[ReceivedEvent]:
    query = select(ReceivedEvent).where(ReceivedEvent.terminal_id == terminal_id,
                                        ReceivedEvent.stan == stan)
    return list(session.scalars(query.order_by(ReceivedEvent.occurred_at)))


def by_card_amount_day(session: Session, last4: str, amount_minor: int,
                       day: date) -> list[ReceivedEvent]:
    """What a cardholder can tell: last 4 digits, amount and (UTC) date."""
    query = select(ReceivedEvent).where(ReceivedEvent.pan_last4 == last4,
                                        ReceivedEvent.amount_minor == amount_minor,
                                        ReceivedEvent.occurred_date == day.isoformat())
    return list(session.scalars(query.order_by(ReceivedEvent.occurred_at)))


def daily_totals(session: Session, day: date) -> list[DailyTotal]:
    """Count and sum per branch, terminal, status and currency for one UTC day."""
    query = (select(ReceivedEvent.branch_id, ReceivedEvent.terminal_id, ReceivedEvent.status,
                    ReceivedEvent.currency, func.count(), func.sum(ReceivedEvent.amount_minor))
             .where(ReceivedEvent.occurred_date == day.isoformat())
             .group_by(ReceivedEvent.branch_id, ReceivedEvent.terminal_id,
                       ReceivedEvent.status, ReceivedEvent.currency)
             .order_by(ReceivedEvent.branch_id, ReceivedEvent.terminal_id,
                       ReceivedEvent.status, ReceivedEvent.currency))
    return [DailyTotal(day.isoformat(), branch, terminal, status, currency, int(count),
                       int(total or 0))
            for branch, terminal, status, currency, count, total in session.execute(query)]
