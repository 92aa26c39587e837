"""What the cases desk reads: the queue, one case with its history, the
attempts around its freeze, and the branches' replies to commands."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlmodel import Session, col

from posgw.center.case_models import CaseTransition, CenterCase, CommandReply
from posgw.center.case_state import UNRESOLVED, parse_time, time_text
from posgw.center.models import ReceivedEvent

#: The rules look back up to a day (wrong PINs: gateway/risk/engine.py); an
#: hour after shows what the card did next.
ATTEMPTS_BEFORE = timedelta(hours=24)
ATTEMPTS_AFTER = timedelta(hours=1)
MAX_ATTEMPTS = 100
MAX_QUEUE = 500
MAX_HISTORY = 200


def case_queue(session: Session, now: datetime, *, branch_id: str = "",
               statuses: Sequence[str] = UNRESOLVED, limit: int = MAX_QUEUE
               ) -> list[CenterCase]:
    """Overdue cases first (still open past their first response), then by
    due time, soonest first."""
    due = col(CenterCase.first_response_due_at)
    overdue_first = case((and_(col(CenterCase.status) == "open",
                               or_(col(CenterCase.overdue), due <= time_text(now))), 0), else_=1)
    query = select(CenterCase).where(col(CenterCase.status).in_(list(statuses)))
    if branch_id:
        query = query.where(col(CenterCase.branch_id) == branch_id)
    query = query.order_by(overdue_first, func.coalesce(due, "9999"), col(CenterCase.opened_at))
    return list(session.scalars(query.limit(limit)))


def case_by_id(session: Session, case_id: str) -> CenterCase | None:
    return session.get(CenterCase, case_id)


def case_history(session: Session, case_id: str) -> list[CaseTransition]:
    query = (select(CaseTransition).where(col(CaseTransition.case_id) == case_id)
             .order_by(col(CaseTransition.seq)).limit(MAX_HISTORY))
    return list(session.scalars(query))


def attempts_around(session: Session, found: CenterCase, frozen_at: datetime
                    ) -> list[ReceivedEvent]:
    """The same card (token) on the same terminal around the freeze: what the
    rules saw. Bounded by day first (PostgreSQL reads only those partitions)."""
    if not found.pan_token:
        return []
    start, end = frozen_at - ATTEMPTS_BEFORE, frozen_at + ATTEMPTS_AFTER
    query = select(ReceivedEvent).where(
        col(ReceivedEvent.terminal_id) == found.terminal_id,
        col(ReceivedEvent.pan_token) == found.pan_token,
        col(ReceivedEvent.occurred_date).between(start.date().isoformat(),
                                                 end.date().isoformat()))
    events = session.scalars(query.order_by(col(ReceivedEvent.occurred_at))
                             .limit(MAX_ATTEMPTS * 4))
    return [event for event in events
            if start <= parse_time(event.occurred_at) <= end][:MAX_ATTEMPTS]


def events_by_id(session: Session, event_ids: Iterable[str]) -> dict[str, ReceivedEvent]:
    wanted = list(dict.fromkeys(event_ids))[:MAX_HISTORY]
    if not wanted:
        return {}
    query = select(ReceivedEvent).where(col(ReceivedEvent.event_id).in_(wanted))
    return {event.event_id: event for event in session.scalars(query)}


def replies_to(session: Session, command_ids: Iterable[str]) -> dict[str, CommandReply]:
    """The latest reply to each command (a repeated command is answered again)."""
    wanted = list(command_ids)
    if not wanted:
        return {}
    query = (select(CommandReply).where(col(CommandReply.command_id).in_(wanted))
             .order_by(col(CommandReply.seq)))
    return {reply.command_id: reply for reply in session.scalars(query)}
