"""The audit trail: every login, logout and action, with its outcome.

Objects are named by ids the center already shows (event ids, account
names, the kind of a search); a search's own terms are never written, since
a customer's card digits could be among them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from posgw.center.web.models import AuditEntry
from posgw.drivers.clock import SYSTEM_CLOCK, Clock

CSV_COLUMNS = ("at", "actor", "action", "object", "outcome", "client")
#: A spreadsheet runs a cell starting with these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def record(engine: Engine, actor: str, action: str, outcome: str, *, object: str = "",
           client: str = "", clock: Clock = SYSTEM_CLOCK) -> None:
    with Session(engine) as session:
        session.add(AuditEntry(at=clock.utc_now(), actor=actor[:64], action=action[:32],
                               object=object[:128], outcome=outcome[:16], client=client[:64]))
        session.commit()


def record_once(engine: Engine, actor: str, action: str, outcome: str, *, object: str,
                client: str = "", within: timedelta, clock: Clock = SYSTEM_CLOCK) -> bool:
    """`record`, unless the same actor's same action on the same object is on
    record from the last `within` (a page that reloads itself while a
    branch's reply is awaited is one view, not forty). True if written."""
    since = clock.utc_now() - within
    with Session(engine) as session:
        seen = session.scalars(select(AuditEntry.id).where(
            col(AuditEntry.at) >= since, col(AuditEntry.actor) == actor[:64],
            col(AuditEntry.action) == action[:32], col(AuditEntry.object) == object[:128],
        ).limit(1)).first()
    if seen is not None:
        return False
    record(engine, actor, action, outcome, object=object, client=client, clock=clock)
    return True


def latest(engine: Engine, limit: int = 200) -> list[AuditEntry]:
    with Session(engine, expire_on_commit=False) as session:
        query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
        return list(session.scalars(query))


def as_csv(entries: Iterable[AuditEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
        cells = [at.isoformat(), entry.actor, entry.action, entry.object, entry.outcome,
                 entry.client]
        writer.writerow([_inert(cell) for cell in cells])
    return out.getvalue()


def _inert(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
