"""`Store`: one engine, the schema check, and the queries the daemon needs.

The same code runs on `sqlite:///path` and `postgresql+psycopg://...`.
SQLite is opened in WAL mode with synchronous=FULL (DESIGN rule 1: a commit
is on disk before the terminal hears "approved"; WAL's NORMAL could lose the
last commits on power loss).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, event, func, insert, inspect, select, update
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlmodel import Session, SQLModel, col, create_engine

from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.private_files import private_sqlite_file
from posgw.gateway.store.columns import table_of
from posgw.gateway.store.errors import SchemaVersionMismatch
from posgw.gateway.store.executed import RetentionQueries
from posgw.gateway.store.migrate import can_migrate, migrate
from posgw.gateway.store.models import (
    SCHEMA_VERSION,
    CaseEvidence,
    ExecutedCommand,
    FreezeCase,
    GatewayRuntime,
    LedgerEntry,
    OutboxEvent,
    Reconciliation,
    SchemaVersion,
    TerminalRecord,
    UpstreamQueueItem,
    VaultedCard,
)
from posgw.gateway.store.outbox import OutboxStats, OutboxTable, PendingEvent

__all__ = ["BatchRow", "OutboxStats", "PendingEvent", "RecentRow", "Store"]

log = logging.getLogger(__name__)

SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
#: A writer waits this long for another connection's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000


class BatchRow(NamedTuple):
    """A ledger row as batch reconciliation counts it."""

    event_id: str
    kind: str
    status: str
    amount_minor: int
    original_event_id: str | None


#: RRNs read past, highest first, to find one of digits only (highest_rrn).
_RRN_CANDIDATES = 100


class RecentRow(NamedTuple):
    """A recent ledger row, as the warm-up after a restart needs it."""

    event_id: str
    terminal_id: str
    message_class: str
    stan: str
    transmission_time: str
    merchant_id: str
    kind: str
    amount_minor: int
    pan_token: str | None
    response_code: str | None
    response_fields: dict[str, str]
    occurred_at: datetime
    status: str
    original_event_id: str | None


class Store(OutboxTable, RetentionQueries):
    def __init__(self, url: str, *, synchronous: str = "FULL") -> None:
        self.url: URL = make_url(url)
        self.engine: Engine = _make_engine(self.url, synchronous)
        self._synchronous = synchronous.upper()
        # One writer at a time inside this process: SQLite allows one anyway,
        # and a writer that finds the file locked waits in its busy handler's
        # sleeps (up to 100 ms each) instead of the moment the lock frees.
        self.write_lock = threading.Lock()
        self._check_schema_version()
        SQLModel.metadata.create_all(self.engine, tables=_gateway_tables())
        _add_missing_indexes(self.engine)
        self._record_schema_version()

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in a transaction, holding the process's write lock."""
        with self.write_lock, self.session() as session, session.begin():
            yield session

    # -- ledger ---------------------------------------------------------------

    def find_request(self, terminal_id: str, stan: str, transmission_time: str,
                     message_class: str = "2") -> LedgerEntry | None:
        """The stored transaction a retransmitted request must be answered from."""
        query = select(LedgerEntry).where(
            col(LedgerEntry.terminal_id) == terminal_id, col(LedgerEntry.stan) == stan,
            col(LedgerEntry.transmission_time) == transmission_time,
            col(LedgerEntry.message_class) == message_class)
        with self.session() as session:
            return session.scalars(query).first()

    def recent_ledger(self, since: datetime, limit: int,
                      response_codes: Collection[str] | None = None) -> list[RecentRow]:
        """The newest `limit` rows since `since` (with one of `response_codes`
        when given), oldest first (risk and dedupe warm-up); plain rows, so a
        restart after a busy day stays quick."""
        columns = [getattr(LedgerEntry, name) for name in RecentRow._fields]
        with self.engine.connect() as conn:
            # A primary-key range: occurred_at has no index, and a filter on it
            # alone read the whole ledger whenever fewer than `limit` rows matched.
            query = select(*columns).where(col(LedgerEntry.id) > _last_id_before(conn, since),
                                           col(LedgerEntry.occurred_at) >= since)
            if response_codes is not None:
                query = query.where(col(LedgerEntry.response_code).in_(sorted(response_codes)))
            query = query.order_by(col(LedgerEntry.id).desc()).limit(limit)
            return [RecentRow(*row) for row in reversed(conn.execute(query).all())]

    def highest_rrn(self, prefix: str, length: int) -> str | None:
        """The highest all-digit RRN of `length` that starts with `prefix`.

        An index range, not a scan: the ledger may hold years of rows. Field
        37 is an12, so an acquirer's or a terminal's RRN with letters can sort
        inside the range ('63390000004A'); those are skipped.
        """
        low, high = prefix.ljust(length, "0"), prefix.ljust(length, "9")
        rrn = col(LedgerEntry.rrn)
        query = (select(rrn).where(rrn >= low, rrn <= high, func.length(rrn) == length)
                 .order_by(rrn.desc()).limit(_RRN_CANDIDATES))
        with self.engine.connect() as conn:
            candidates = conn.scalars(query).all()
        return next((found for found in candidates
                     if found is not None and found.isascii() and found.isdigit()), None)

    def batch_rows(self, terminal_id: str, since: datetime | None) -> list[BatchRow]:
        """The terminal's ledger rows of its open batch (all of them when `since` is None)."""
        columns = [getattr(LedgerEntry, name) for name in BatchRow._fields]
        query = select(*columns).where(col(LedgerEntry.terminal_id) == terminal_id)
        if since is not None:
            query = query.where(col(LedgerEntry.occurred_at) >= since)
        with self.engine.connect() as conn:
            return [BatchRow(*row) for row in conn.execute(query)]

    def find_by_rrn(self, terminal_id: str, rrn: str) -> LedgerEntry | None:
        """The sale of `terminal_id` with retrieval reference `rrn` (what a void names)."""
        query = (select(LedgerEntry).where(
            col(LedgerEntry.terminal_id) == terminal_id, col(LedgerEntry.rrn) == rrn,
            col(LedgerEntry.kind).in_(("purchase", "preauth", "completion")))
            .order_by(col(LedgerEntry.id).desc()))
        with self.session() as session:
            return session.scalars(query).first()

    def find_original(self, terminal_id: str, stan: str) -> LedgerEntry | None:
        """The newest non-reversal transaction of `terminal_id` with STAN `stan`."""
        query = (select(LedgerEntry).where(
            col(LedgerEntry.terminal_id) == terminal_id, col(LedgerEntry.stan) == stan,
            col(LedgerEntry.message_class) != "4").order_by(col(LedgerEntry.id).desc()))
        with self.session() as session:
            return session.scalars(query).first()

    # -- upstream store-and-forward (reversal advices) ------------------------------

    def due_advices(self, now: datetime, limit: int) -> list[UpstreamQueueItem]:
        query = (select(UpstreamQueueItem).where(col(UpstreamQueueItem.done_at).is_(None))
                 .where(col(UpstreamQueueItem.next_attempt_at) <= now)
                 .order_by(col(UpstreamQueueItem.id)).limit(limit))
        with self.session() as session:
            return list(session.scalars(query))


    def advice_attempted(self, item_id: int, *, done_at: datetime | None,
                         next_attempt_at: datetime) -> None:
        with self.writing() as session:
            session.execute(update(UpstreamQueueItem)
                            .where(col(UpstreamQueueItem.id) == item_id)
                            .values(attempts=col(UpstreamQueueItem.attempts) + 1, done_at=done_at,
                                    next_attempt_at=next_attempt_at))

    # -- terminals and runtime state (read by `posgw status`) --------------------

    def save_terminals(self, records: Sequence[TerminalRecord]) -> None:
        """Insert or update these terminals' rows in one transaction.

        The heartbeat saves every terminal heard from since the last one: a
        merge and a commit per terminal held the write lock (and the group
        commit behind it) for a fsync each, hundreds per beat.
        """
        if not records:
            return
        table = table_of(TerminalRecord)
        rows = [record.model_dump() for record in records]
        ids = [row["terminal_id"] for row in rows]
        with self.write_lock, self.engine.begin() as conn:
            known = set(conn.scalars(select(table.c.terminal_id)
                                     .where(table.c.terminal_id.in_(ids))))
            updates = [{**row, "key": row["terminal_id"]} for row in rows
                       if row["terminal_id"] in known]
            if updates:
                conn.execute(update(table).where(table.c.terminal_id == bindparam("key")),
                             updates)
            inserts = [row for row in rows if row["terminal_id"] not in known]
            if inserts:
                conn.execute(insert(table), inserts)

    def terminals(self) -> list[TerminalRecord]:
        with self.session() as session:
            return list(session.scalars(select(TerminalRecord)
                                        .order_by(col(TerminalRecord.terminal_id))))

    def update_runtime(self, **values: Any) -> None:
        """Set columns of the single GatewayRuntime row, creating it first."""
        with self.writing() as session:
            row = session.get(GatewayRuntime, 1) or GatewayRuntime(id=1)
            for name, value in values.items():
                setattr(row, name, value)
            session.merge(row)

    def runtime(self) -> GatewayRuntime | None:
        with self.session() as session:
            return session.get(GatewayRuntime, 1)

    # -- schema version ---------------------------------------------------------

    def _check_schema_version(self) -> None:
        if not inspect(self.engine).has_table(SchemaVersion.__tablename__):
            return
        with self.session() as session:
            row = session.get(SchemaVersion, 1)
        if row is None or row.version == SCHEMA_VERSION:
            return
        if not can_migrate(row.version, SCHEMA_VERSION):
            raise SchemaVersionMismatch(self.display_url, row.version, SCHEMA_VERSION)
        migrate(self.engine, row.version, SCHEMA_VERSION, SYSTEM_CLOCK.utc_now())

    def _record_schema_version(self) -> None:
        with self.writing() as session:
            if session.get(SchemaVersion, 1) is None:
                session.add(SchemaVersion(version=SCHEMA_VERSION,
                                          applied_at=SYSTEM_CLOCK.utc_now()))


def _add_missing_indexes(engine: Engine) -> None:
    """Indexes added since a table was made (create_all skips existing
    tables): an index changes no row, so it needs no schema version."""
    for table in _gateway_tables():
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def _gateway_tables() -> list[Table]:
    # Only ours: the shared SQLModel metadata may also hold other packages' tables.
    return [table_of(model) for model in (
        LedgerEntry, OutboxEvent, TerminalRecord, UpstreamQueueItem, FreezeCase, GatewayRuntime,
        Reconciliation, SchemaVersion, VaultedCard, CaseEvidence, ExecutedCommand)]


def _make_engine(url: URL, synchronous: str) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if synchronous.upper() not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SQLITE_SYNCHRONOUS}")
    for loose in private_sqlite_file(url.database):
        log.warning("%s could be read by group or others; it is now 0600", loose)
    # Worker threads share the pool: sqlite3's same-thread check must be off.
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas(synchronous.upper()))
    return engine


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return on_connect


def _last_id_before(conn: Connection, since: datetime) -> int:
    """An id after which every ledger row occurred at or after `since` (rows
    are written in time order), by binary search over the primary key: some
    30 lookups, where a filter on occurred_at alone scanned the ledger. Rows
    a stepped clock put out of order are still filtered by time."""
    ledger_id = col(LedgerEntry.id)
    first_after = select(ledger_id, col(LedgerEntry.occurred_at)).order_by(ledger_id).limit(1)
    low, high = 0, conn.scalar(select(func.max(ledger_id))) or 0
    # Invariant: the first row after `high` is recent (or none is); the first
    # row after any id below `low` is older than `since`.
    while low < high:
        middle = (low + high) // 2
        row = conn.execute(first_after.where(ledger_id > middle)).first()
        if row is None or row[0] is None or row[1] >= since:
            high = middle
        else:
            low = row[0]
    return high
