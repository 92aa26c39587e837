"""What the quarantine holds: counts by kind, and the latest entries.

Reasons never quote a payload (center/verify.py), and stored payload text
has its long digit runs masked (center/rows.py), so nothing read here holds
a card number in clear; this module shows reasons, not payloads. Topics are
the publisher's choice: the command line escapes them before printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, inspect, literal, select
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from posgw.center.models import QuarantinedPayload, QuarantineOverflow

#: Shown for rows quarantined before rows had a kind.
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: int
    received_at: datetime
    kind: str
    topic: str
    reason: str


def counts_by_kind(session: Session) -> dict[str, int]:
    """Quarantined payloads per kind, kept or only counted past their
    source's cap, most frequent first."""
    kind = _kind(session)
    rows = session.execute(select(kind, func.count()).group_by(kind)).all()
    counts: dict[str, int] = {}
    for name, count in rows:
        counts[name or UNCLASSIFIED] = counts.get(name or UNCLASSIFIED, 0) + int(count)
    for (_source, name), count in overflow(session).items():
        counts[name] = counts.get(name, 0) + count
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def overflow(session: Session) -> dict[tuple[str, str], int]:
    """(source, kind) -> payloads counted but not kept (center/quarantine_cap.py)."""
    if not inspect(session.get_bind()).has_table(QuarantineOverflow.__tablename__):
        return {}  # a database from before the cap: nothing counted apart
    query = select(col(QuarantineOverflow.source), col(QuarantineOverflow.kind),
                   col(QuarantineOverflow.count)).order_by(col(QuarantineOverflow.source),
                                                           col(QuarantineOverflow.kind))
    return {(source, kind): int(count) for source, kind, count in session.execute(query)}


def recent(session: Session, limit: int) -> list[QuarantineEntry]:
    """The newest `limit` entries, newest first."""
    query = (select(col(QuarantinedPayload.id), col(QuarantinedPayload.received_at),
                    _kind(session), col(QuarantinedPayload.topic),
                    col(QuarantinedPayload.reason))
             .order_by(col(QuarantinedPayload.id).desc()).limit(limit))
    return [QuarantineEntry(row_id, received_at, kind or UNCLASSIFIED, topic, reason)
            for row_id, received_at, kind, topic, reason in session.execute(query)]


def _kind(session: Session) -> Mapped[str] | ColumnElement[str]:
    """The kind column; a constant on a database the center has not yet
    upgraded (the read-only CLI never alters a database)."""
    columns = {c["name"] for c in inspect(session.get_bind()).get_columns(
        QuarantinedPayload.__tablename__)}
    if "kind" in columns:
        return col(QuarantinedPayload.kind)
    return literal("").label("kind")
