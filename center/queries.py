"""The questions the center answers: "did payment X arrive?" and daily totals."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from posgw.center.models import ReceivedEvent
from posgw.protocols.contract import FROZEN, REFUND, REVERSED, SETTLED, VOIDED

#: Statuses whose amount counts towards a day's settled total.
SETTLED_STATUSES = (SETTLED,)
#: Statuses that give money back: each arrives as its own event with its own
#: (positive) amount, and nets out of the day's settled sum.
RETURNED_STATUSES = (REVERSED, VOIDED, REFUND)
#: Held by a freeze case: neither settled nor returned until released.
HELD_STATUSES = (FROZEN,)
#: Columns of an event shown by `posgw center query` (never the raw payload).
EVENT_COLUMNS = ("event_id", "occurred_at", "branch_id", "gateway_id", "seq", "terminal_id",
                 "merchant_id", "stan", "rrn", "auth_code", "response_code", "status", "kind",
                 "amount_minor", "currency", "pan_masked", "entry_mode", "received_at")


@dataclass(frozen=True, slots=True)
class DailyTotal:
    day: str
    branch_id: str
    terminal_id: str
    status: str
    currency: str
    count: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class TerminalDay:
    """One terminal's day in one currency, with refunds and undos netted out."""

    day: str
    branch_id: str
    terminal_id: str
    currency: str
    settled_count: int = 0
    settled_minor: int = 0
    returned_count: int = 0  # reversed, voided, refund
    returned_minor: int = 0
    held_count: int = 0  # frozen
    held_minor: int = 0
    declined_count: int = 0

    @property
    def net_minor(self) -> int:
        return self.settled_minor - self.returned_minor


def by_rrn(session: Session, rrn: str) -> list[ReceivedEvent]:
    return list(session.scalars(select(ReceivedEvent).where(col(ReceivedEvent.rrn) == rrn)))


def by_terminal_stan(session: Session, terminal_id: str, stan: str) -> list[ReceivedEvent]:
    query = select(ReceivedEvent).where(col(ReceivedEvent.terminal_id) == terminal_id,
                                        col(ReceivedEvent.stan) == stan)
    return list(session.scalars(query.order_by(col(ReceivedEvent.occurred_at))))


def by_card_amount_day(session: Session, last4: str, amount_minor: int,
                       day: date) -> list[ReceivedEvent]:
    """What a cardholder can tell: last 4 digits, amount and (UTC) date."""
    query = select(ReceivedEvent).where(col(ReceivedEvent.pan_last4) == last4,
                                        col(ReceivedEvent.amount_minor) == amount_minor,
                                        col(ReceivedEvent.occurred_date) == day.isoformat())
    return list(session.scalars(query.order_by(col(ReceivedEvent.occurred_at))))


def by_card_near(session: Session, last4: str, amounts: tuple[int, int],
                 days: tuple[date, date], limit: int = 100) -> list[ReceivedEvent]:
    """`by_card_amount_day` with room for what a customer misremembers: an
    amount range and a range of (UTC) days, both inclusive."""
    query = select(ReceivedEvent).where(
        col(ReceivedEvent.pan_last4) == last4,
        col(ReceivedEvent.amount_minor).between(*amounts),
        col(ReceivedEvent.occurred_date).between(days[0].isoformat(), days[1].isoformat()))
    return list(session.scalars(query.order_by(col(ReceivedEvent.occurred_at)).limit(limit)))


def by_place(session: Session, *, merchant_id: str | None = None,
             branch_id: str | None = None, day: date, limit: int = 200) -> list[ReceivedEvent]:
    """A merchant's or a branch's events of one (UTC) day, latest first."""
    query = select(ReceivedEvent).where(col(ReceivedEvent.occurred_date) == day.isoformat())
    if merchant_id is not None:
        query = query.where(col(ReceivedEvent.merchant_id) == merchant_id)
    if branch_id is not None:
        query = query.where(col(ReceivedEvent.branch_id) == branch_id)
    return list(session.scalars(query.order_by(col(ReceivedEvent.occurred_at).desc())
                                .limit(limit)))


def by_event_id(session: Session, event_id: str) -> ReceivedEvent | None:
    query = select(ReceivedEvent).where(col(ReceivedEvent.event_id) == event_id)
    return session.scalars(query).first()


def linked_events(session: Session, event: ReceivedEvent) -> list[ReceivedEvent]:
    """The events of the same payment: its reversal, void, refund or
    re-clearing. They share the terminal and RRN, or one names the other as
    its `original_event_id`. Oldest first, the event itself left out."""
    original = event.payload.get("original_event_id")
    found: dict[str, ReceivedEvent] = {}
    if event.rrn:
        for other in session.scalars(select(ReceivedEvent).where(
                col(ReceivedEvent.terminal_id) == event.terminal_id,
                col(ReceivedEvent.rrn) == event.rrn)):
            found[other.event_id] = other
    # Undone on the same terminal: its index narrows the JSON comparison.
    for other in session.scalars(select(ReceivedEvent).where(
            col(ReceivedEvent.terminal_id) == event.terminal_id,
            ReceivedEvent.payload["original_event_id"].as_string()
            == event.event_id)):
        found[other.event_id] = other
    if isinstance(original, str):
        parent = by_event_id(session, original)
        if parent is not None:
            found[parent.event_id] = parent
    found.pop(event.event_id, None)
    return sorted(found.values(), key=lambda other: (other.occurred_at, other.seq))


def daily_totals(session: Session, day: date) -> list[DailyTotal]:
    """Count and sum per branch, terminal, status and currency for one UTC day."""
    keys = (col(ReceivedEvent.branch_id), col(ReceivedEvent.terminal_id),
            col(ReceivedEvent.status), col(ReceivedEvent.currency))
    query = (select(*keys, func.count(), func.sum(col(ReceivedEvent.amount_minor)))
             .where(col(ReceivedEvent.occurred_date) == day.isoformat())
             .group_by(*keys)
             .order_by(*keys))
    return [DailyTotal(day.isoformat(), branch, terminal, status, currency, int(count),
                       int(total or 0))
            for branch, terminal, status, currency, count, total in session.execute(query)]


def terminal_days(session: Session, day: date) -> list[TerminalDay]:
    """`daily_totals` folded per branch, terminal and currency, with net amounts."""
    folded: dict[tuple[str, str, str], TerminalDay] = {}
    for total in daily_totals(session, day):
        key = (total.branch_id, total.terminal_id, total.currency)
        current = folded.get(key) or TerminalDay(total.day, *key)
        folded[key] = _with_total(current, total)
    return [folded[key] for key in sorted(folded)]


def _with_total(day: TerminalDay, total: DailyTotal) -> TerminalDay:
    if total.status in SETTLED_STATUSES:
        return replace(day, settled_count=day.settled_count + total.count,
                       settled_minor=day.settled_minor + total.amount_minor)
    if total.status in RETURNED_STATUSES:
        return replace(day, returned_count=day.returned_count + total.count,
                       returned_minor=day.returned_minor + total.amount_minor)
    if total.status in HELD_STATUSES:
        return replace(day, held_count=day.held_count + total.count,
                       held_minor=day.held_minor + total.amount_minor)
    return replace(day, declined_count=day.declined_count + total.count)


def event_view(event: ReceivedEvent) -> dict[str, Any]:
    """An event as plain values for output: masked PAN only, no payload."""
    view = {column: getattr(event, column) for column in EVENT_COLUMNS}
    received = view["received_at"]
    if isinstance(received, datetime):
        # SQLite hands timezone-aware columns back naive; they were written in UTC.
        aware = received if received.tzinfo else received.replace(tzinfo=UTC)
        view["received_at"] = aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return view
