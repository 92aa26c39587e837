"""The outbox table's three states, as the forwarder and the views need them.

pending -> published (broker PUBACK) -> done (`delivered_at`: the center
confirmed or quarantined it; without a center key, the PUBACK). Marks are
committed without waiting for the disk: a mark lost to a power cut only
means the event is published again, and the center ignores the repeat.
The fsync it skipped held the write lock, and with it every terminal's
next commit, twenty times a second.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select, text, update
from sqlalchemy.engine import URL, Connection, Engine
from sqlmodel import col

from posgw.gateway.store.models import CONTROL_ROWS, OutboxEvent


class PendingEvent(NamedTuple):
    """An outbox row to publish, as the forwarder needs it (`seq` is its key)."""

    seq: int
    event_id: str
    topic: str
    terminal_id: str | None
    retain: bool
    wire: bytes | None  # the sealed (signed) bytes, when the committer sealed it
    payload: dict[str, Any] | None  # read only for rows that were not sealed


_PENDING_COLUMNS = ("seq", "event_id", "topic", "terminal_id", "retain", "wire")


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """`depth`: rows not done (pending + published); `published`: of those,
    the broker acknowledged and the center has not confirmed yet."""

    depth: int
    oldest_created_at: datetime | None
    published: int = 0

    @property
    def pending(self) -> int:
        return self.depth - self.published

    def oldest_age_s(self, now: datetime) -> float | None:
        if self.oldest_created_at is None:
            return None
        return max(0.0, (now - self.oldest_created_at).total_seconds())


def _not_done() -> ColumnElement[bool]:
    return col(OutboxEvent.delivered_at).is_(None)


class OutboxTable:
    """Store's outbox queries (a mixin: Store owns the engine and the lock)."""

    engine: Engine
    url: URL
    write_lock: threading.Lock
    _synchronous: str

    def pending_outbox(self, limit: int, after_seq: int = 0, *, unpublished_only: bool = True,
                       control_only: bool = False) -> list[PendingEvent]:
        """Rows to publish in seq order (so in order per terminal and topic).

        `unpublished_only`: skip rows the broker acknowledged (they wait for
        the center's confirmation, or its timeout); `control_only`: every
        topic but `tx` (command replies, statuses, cases go ahead of a backlog).
        """
        return self._read(self.pending_query(limit, after_seq, unpublished_only=unpublished_only,
                                             control_only=control_only))

    def pending_query(self, limit: int, after_seq: int = 0, *, unpublished_only: bool = True,
                      control_only: bool = False) -> Select[Any]:
        """The query behind `pending_outbox` (its plan is tested)."""
        query = self._rows_query(limit, after_seq)
        # A control row published is either done (at its PUBACK) or waits for
        # the center like a tx row (a batch report): never one to start ahead
        # again. The filter also makes ix_outbox_control the index SQLite
        # picks (one column more than ix_outbox_pending).
        if unpublished_only or control_only:
            query = query.where(col(OutboxEvent.published_at).is_(None))
        if control_only:
            query = query.where(text(CONTROL_ROWS))
        return query

    def due_for_republish(self, published_before: datetime, limit: int,
                          after_seq: int = 0) -> list[PendingEvent]:
        """Published rows the center has not confirmed since `published_before`."""
        query = self._rows_query(limit, after_seq).where(
            col(OutboxEvent.published_at) <= published_before)
        return self._read(query)

    def mark_delivered(self, seqs: Sequence[int], at: datetime) -> None:
        """Done at PUBACK: only without a center key (DESIGN rule 2); by `seq`."""
        self._mark(seqs, delivered_at=at)

    def mark_published(self, seqs: Sequence[int], at: datetime) -> None:
        """The broker acknowledged these (`seq`s); the center has yet to confirm."""
        self._mark(seqs, published_at=at)

    def confirm(self, stored: Sequence[str], quarantined: Mapping[str, str],
                at: datetime) -> int:
        """The center's word, in one write: `stored` event_ids are done,
        `quarantined` ones too, with the reason kept. Unknown or already
        done event_ids change nothing. Returns the rows that became done."""
        if not stored and not quarantined:
            return 0
        done = 0
        with self.write_lock, self.engine.connect() as conn, self._without_fsync(conn):
            if stored:
                done += conn.execute(update(OutboxEvent).where(
                    _not_done(), col(OutboxEvent.event_id).in_(list(stored)))
                    .values(delivered_at=at)).rowcount
            if quarantined:
                done += conn.execute(
                    update(OutboxEvent).where(
                        and_(_not_done(), col(OutboxEvent.event_id) == bindparam("key")))
                    .values(delivered_at=at, quarantine_reason=bindparam("reason")),
                    [{"key": key, "reason": reason} for key, reason in quarantined.items()]
                ).rowcount
            conn.commit()
        return max(done, 0)

    def outbox_stats(self) -> OutboxStats:
        published = func.count(col(OutboxEvent.published_at))  # counts non-null only
        query = (select(func.count(), func.min(col(OutboxEvent.created_at)), published)
                 .where(_not_done()))
        with self.engine.connect() as conn:
            depth, oldest, waiting = conn.execute(query).one()
        # min() bypasses the column type on some dialects: re-apply UTC.
        return OutboxStats(int(depth), _as_utc(oldest), int(waiting or 0))

    def undelivered_for(self, terminal_id: str) -> int:
        query = (select(func.count()).select_from(OutboxEvent)
                 .where(col(OutboxEvent.terminal_id) == terminal_id).where(_not_done()))
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def max_seq(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.coalesce(func.max(col(OutboxEvent.seq)), 0)))
                       or 0)

    # -- helpers ----------------------------------------------------------------

    def _rows_query(self, limit: int, after_seq: int) -> Select[Any]:
        columns = [getattr(OutboxEvent, name) for name in _PENDING_COLUMNS]
        return (select(*columns).where(_not_done()).where(col(OutboxEvent.seq) > after_seq)
                .order_by(col(OutboxEvent.seq)).limit(limit))

    def _read(self, query: Select[Any]) -> list[PendingEvent]:
        """Plain rows, not ORM objects: the forwarder reads a window per
        round, and building OutboxEvent objects cost more than the query."""
        with self.engine.connect() as conn:
            rows = [PendingEvent._make((*row, None)) for row in conn.execute(query)]
            unsealed = [row.seq for row in rows if row.wire is None]
            if not unsealed:  # the usual case: the JSON column is never decoded
                return rows
            payload_query = (select(col(OutboxEvent.seq), col(OutboxEvent.payload))
                             .where(col(OutboxEvent.seq).in_(unsealed)))
            payloads: dict[int, dict[str, Any]] = {
                seq: payload for seq, payload in conn.execute(payload_query)}
        return [row._replace(payload=payloads.get(row.seq)) for row in rows]

    def _mark(self, seqs: Sequence[int], **values: datetime) -> None:
        if not seqs:
            return
        statement = (update(OutboxEvent)
                     .where(col(OutboxEvent.seq).in_(list(seqs)), _not_done())
                     .values(**values, attempts=col(OutboxEvent.attempts) + 1))
        with self.write_lock, self.engine.connect() as conn, self._without_fsync(conn):
            conn.execute(statement)
            conn.commit()

    @contextmanager
    def _without_fsync(self, conn: Connection) -> Iterator[None]:
        """The next commit on `conn` does not wait for the disk."""
        if self.url.get_backend_name() != "sqlite":
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")  # this transaction
            yield
            return
        # WAL with synchronous=NORMAL: the commit is in the WAL, synced by the next
        # FULL commit. Set outside a transaction, and put back for the pool.
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"PRAGMA synchronous={self._synchronous}")
            conn.commit()


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {type(moment).__name__}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
