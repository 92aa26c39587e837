"""Group commit: many requests, one durable transaction (DESIGN rule 1).

While one batch is being written, new requests queue; when it is durable,
everything queued becomes the next batch. With synchronous=FULL each commit
costs an fsync, so grouping is what lets one SQLite file keep up with many
terminals. Each caller resumes only once its own batch is on disk.

The outbox cap is checked inside the batch transaction: a request that
would push the undelivered count past the cap gets `OutboxFull` and nothing
of it is written (it must be declined) — the outbox never drops an event.
Counting the undelivered rows costs a scan as long as the outbox (about a
tenth of a batch's time while the broker keeps up, more when it does not),
so the check uses an upper bound — the last count plus every row inserted
since (deliveries only lower the truth) — and counts again when that bound
would reach the cap, or when the count is a second old.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col

from posgw.gateway.store.bulk import BulkInserter
from posgw.gateway.store.columns import table_of
from posgw.gateway.store.errors import DuplicateRequest, OutboxFull, StoreError
from posgw.gateway.store.models import FORBIDDEN_RESPONSE_FIELDS, LedgerEntry, OutboxEvent
from posgw.gateway.store.rows import TableRow
from posgw.gateway.store.store import PendingEvent, Store

log = logging.getLogger(__name__)

#: Default outbox cap: ~a day of a busy branch; matches gateway.config.
DEFAULT_OUTBOX_CAP = 100_000
#: Upper bound of one batch: keeps one transaction's latency bounded.
DEFAULT_MAX_BATCH = 512
#: The outbox is counted again at least this often (metrics, status).
RECOUNT_INTERVAL_S = 1.0


Row = SQLModel | TableRow


#: Told, after each durable commit, the outbox events it wrote (seq order).
CommitListener = Callable[[list[PendingEvent]], None]


@dataclass(slots=True)
class _Request:
    rows: tuple[Row, ...]
    done: asyncio.Future[int | None]
    outbox: Row | None = None
    seq: int | None = None
    error: BaseException | None = field(default=None)
    events: list[PendingEvent] = field(default_factory=list)  # its outbox rows, as written


class GroupCommitter:
    """`async with GroupCommitter(store) as committer: await committer.commit(...)`."""

    def __init__(self, store: Store, *, outbox_cap: int = DEFAULT_OUTBOX_CAP,
                 max_batch: int = DEFAULT_MAX_BATCH,
                 on_commit: CommitListener | None = None,
                 seal: Callable[[dict[str, Any]], bytes] | None = None) -> None:
        """`seal`: turns an outbox payload, once its seq is set, into the bytes
        to publish (the forwarder's signer); stored as `wire`, so signing and
        serializing happen once, in the committer's thread, not per publish.
        `on_commit`: hears each durable batch's outbox events, so the
        forwarder can publish them without reading them back."""
        self._store = store
        self._inserter = BulkInserter(store.engine.dialect)
        self._seal = seal
        self._cap = outbox_cap
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._queue: collections.deque[_Request] = collections.deque()
        self._wakeup = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._closing = False
        self._next_seq = 0
        self.batches_committed = 0
        #: Undelivered outbox rows as of the last batch: exact when counted,
        #: else an upper bound (the last count plus the rows inserted since).
        self.outbox_depth = 0
        self._counted_at: float | None = None  # monotonic time of the last count

    async def __aenter__(self) -> GroupCommitter:
        self._next_seq = await asyncio.to_thread(self._store.max_seq) + 1
        # One thread of its own: every batch runs where the last one did (warm
        # caches), and no hand-off through the loop's shared pool.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._group.create_task(self._run(), name="group-committer")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closing = True  # drain what is queued, then stop
        self._wakeup.set()
        assert self._group is not None
        try:
            await self._group.__aexit__(exc_type, exc, tb)
        finally:
            self._fail_queued(StoreError("group committer closed"))
            if self._writer is not None:
                self._writer.shutdown(wait=False)

    @property
    def outbox_full(self) -> bool:
        """True while the outbox is at its cap: new sales must be refused."""
        return self.outbox_depth >= self._cap

    def note_outbox_depth(self, depth: int) -> None:
        """A fresh count from elsewhere (the daemon's heartbeat): while the
        outbox is full no batch runs, so deliveries would go unnoticed. It
        was taken outside the write lock, so the next batch counts again."""
        self.outbox_depth = depth
        self._counted_at = None

    async def commit(self, ledger: LedgerEntry | TableRow | None,
                     outbox: OutboxEvent | TableRow | None = None, *extra: Row) -> int | None:
        """Write the rows in one durable transaction; returns the outbox seq.

        Raises OutboxFull or DuplicateRequest, in which case nothing of this
        request was written. Once submitted the write happens even if the
        caller is cancelled meanwhile.
        """
        if self._closing or self._group is None:
            raise StoreError("group committer is not running")
        rows = tuple(row for row in (ledger, outbox, *extra) if row is not None)
        request = _Request(rows, asyncio.get_running_loop().create_future(), outbox)
        self._queue.append(request)
        self._wakeup.set()
        # No shield needed: a cancelled caller cancels only its future, which
        # `_resolve` then skips; the batch still holds and writes the rows.
        return await request.done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = [self._queue.popleft()
                         for _ in range(min(self._max_batch, len(self._queue)))]
                await self._commit_batch(batch)
            if self._closing:
                return

    async def _commit_batch(self, batch: list[_Request]) -> None:
        try:
            assert self._writer is not None
            await asyncio.get_running_loop().run_in_executor(self._writer, self._write_batch,
                                                             batch)
        except Exception as exc:  # the database itself failed: every caller hears it
            log.exception("group commit of %d requests failed", len(batch))
            for request in batch:
                request.error = request.error or exc
        self.batches_committed += 1
        for request in batch:
            _resolve(request)
        if self._on_commit is not None and any(r.error is None for r in batch):
            self._on_commit([event for request in batch if request.error is None
                             for event in request.events])

    # -- worker thread --------------------------------------------------------

    def _write_batch(self, batch: list[_Request]) -> None:
        with self._store.write_lock:
            self._write_batch_locked(batch)

    def _write_batch_locked(self, batch: list[_Request]) -> None:
        accepted = self._apply_cap(batch)
        first_seq = self._next_seq
        try:
            with self._store.engine.begin() as conn:
                self._insert_all(conn, accepted)
        except IntegrityError:
            # Someone in the batch is a duplicate: retry one by one so only they fail.
            self._next_seq = first_seq
            for request in accepted:
                self._write_alone(request)
        except BaseException:
            self._next_seq = first_seq  # nothing was written: no seq gap
            raise

    def _write_alone(self, request: _Request) -> None:
        seq_before = self._next_seq
        try:
            with self._store.engine.begin() as conn:
                self._insert_all(conn, [request])
        except IntegrityError:
            self._next_seq = seq_before
            request.seq = None
            request.error = _duplicate_error(request.rows)

    def _apply_cap(self, batch: Sequence[_Request]) -> list[_Request]:
        depth = self._depth_before(sum(request.outbox is not None for request in batch))
        accepted: list[_Request] = []
        for request in batch:
            if request.outbox is not None and depth >= self._cap:
                request.error = OutboxFull(depth, self._cap)
                continue
            depth += request.outbox is not None
            accepted.append(request)
        self.outbox_depth = depth
        if len(accepted) < len(batch):
            log.error("OUTBOX FULL: %d undelivered events (cap %d); refused %d requests — "
                      "is the broker reachable?", depth, self._cap, len(batch) - len(accepted))
        return accepted

    def _depth_before(self, adding: int) -> int:
        """Undelivered rows now: the bound while it stays clear of the cap."""
        now = time.monotonic()
        if (self._counted_at is None or now - self._counted_at >= RECOUNT_INTERVAL_S
                or self.outbox_depth + adding >= self._cap):
            with self._store.engine.connect() as conn:
                undelivered = (select(func.count()).select_from(OutboxEvent)
                               .where(col(OutboxEvent.delivered_at).is_(None)))
                self.outbox_depth = conn.scalar(undelivered) or 0
            self._counted_at = now
        return self.outbox_depth

    def _insert_all(self, conn: Connection, requests: Sequence[_Request]) -> None:
        """One executemany per table for the whole batch (an INSERT per row
        cost more than the fsync it shares), through BulkInserter."""
        by_table: dict[Any, list[dict[str, Any]]] = {}
        for request in requests:
            request.seq = None
            request.events = []
            for row in request.rows:
                model, values = _model_and_values(row)
                if model is OutboxEvent:
                    request.seq = values["seq"] = self._next_seq
                    values["payload"] = {**values["payload"], "seq": self._next_seq}
                    if self._seal is not None:
                        values["wire"] = self._seal(values["payload"])
                    request.events.append(_pending(values))
                    self._next_seq += 1
                by_table.setdefault(table_of(model), []).append(values)
        for table, rows in by_table.items():
            self._inserter.insert(conn, table, rows)

    def _fail_queued(self, error: BaseException) -> None:
        while self._queue:
            request = self._queue.popleft()
            request.error = error
            _resolve(request)


def _model_and_values(row: Row) -> tuple[type[SQLModel], dict[str, Any]]:
    if isinstance(row, TableRow):
        model, values = row.model, dict(row.values)
    else:
        model, values = type(row), row.model_dump()
        if values.get("id") is None:
            values.pop("id", None)
    if model is LedgerEntry and FORBIDDEN_RESPONSE_FIELDS & values["response_fields"].keys():
        # Rule 5: a stored response must never carry PAN, track, PIN or ICC data.
        raise ValueError("response_fields holds card data fields; strip them before storing")
    return model, values


def _pending(values: dict[str, Any]) -> PendingEvent:
    wire = values.get("wire")
    return PendingEvent(values["seq"], values["event_id"], values["topic"],
                        values.get("terminal_id"), bool(values.get("retain")), wire,
                        None if wire is not None else values["payload"])


def _duplicate_error(rows: Sequence[Row]) -> StoreError:
    for row in rows:
        model, values = _model_and_values(row)
        if model is LedgerEntry:
            return DuplicateRequest(values["terminal_id"], values["stan"])
    return StoreError("duplicate event id")


def _resolve(request: _Request) -> None:
    if request.done.done():
        return
    if request.error is not None:
        request.done.set_exception(request.error)
        # A cancelled caller never retrieves it; do not warn about that.
        request.done.add_done_callback(lambda fut: fut.exception())
    else:
        request.done.set_result(request.seq)
