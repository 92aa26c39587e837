"""`CenterStore`: SQLite by default, PostgreSQL by URL.

Tables are made here (on PostgreSQL the events table is partitioned:
center/pg_schema.py); writes go through the store's `writer()`
(center/writer.py, center/pg_writer.py). Inserts are ON CONFLICT (event_id)
DO NOTHING, so a redelivered event (QoS 1 is at-least-once) is a no-op,
also across concurrent subscribers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from posgw.center.case_models import CaseTransition, CenterCase, CommandReply
from posgw.center.models import (
    RECONCILIATION_INDEX,
    GatewayKey,
    GatewaySeqs,
    GatewayStatus,
    QuarantinedPayload,
    QuarantineOverflow,
    ReceivedEvent,
    ReceivedReconciliation,
    SeenSeq,
    TerminalStatus,
)
from posgw.center.pg_schema import LATER_INDEXES, partitioned_ddl
from posgw.center.pg_writer import PostgresWriter
from posgw.center.rows import QuarantineRow, StoreRow
from posgw.center.settlement.tables import SETTLEMENT_MODELS
from posgw.center.writer import BatchWriter, SqliteWriter, table_of
from posgw.drivers.private_files import private_sqlite_file
from posgw.protocols.canonical_json import canonical_json

log = logging.getLogger(__name__)

_TABLES = [table_of(model) for model in (
    ReceivedEvent, QuarantinedPayload, QuarantineOverflow, GatewayKey, ReceivedReconciliation,
    SeenSeq, GatewaySeqs, TerminalStatus, GatewayStatus, CenterCase, CaseTransition,
    CommandReply, *SETTLEMENT_MODELS)]
#: Any constant works: it only has to be the same in every center process.
SCHEMA_LOCK_KEY = 0x706F7367_63656E74  # "posgcent"


class CenterStore:
    """The center's database. `create=False` opens it for reading only as it
    is (queries), never creating tables or, for SQLite, the file."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if not create and not Path(parsed.database or "").is_file():
                raise FileNotFoundError(f"no center database at {parsed.database}")
            if create:
                for loose in private_sqlite_file(parsed.database):
                    log.warning("%s could be read by group or others; it is now 0600", loose)
            self.engine: Engine = create_engine(parsed, connect_args={"check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(parsed, pool_pre_ping=True)
        self._writer: BatchWriter | None = None
        if create:
            self._create_tables()

    def _create_tables(self) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Center processes started together would race CREATE TABLE
                # (a duplicate-type error on PostgreSQL): one at a time.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": SCHEMA_LOCK_KEY})
                if not inspect(conn).has_table("center_events"):
                    for statement in partitioned_ddl():
                        conn.execute(text(statement))
            SQLModel.metadata.create_all(conn, tables=_TABLES)
            for index in LATER_INDEXES:  # also on a database made before them
                conn.execute(text(index))
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {RECONCILIATION_INDEX} ON "
                              "center_reconciliations (outcome, batch_closed_at)"))
            _add_quarantine_kind(conn)
            _add_gateway_branch(conn)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def writer(self) -> BatchWriter:
        """The ingest's batch writer (made once): raw psycopg on PostgreSQL,
        SQLAlchemy Core on SQLite."""
        if self._writer is None:
            if self.engine.dialect.name == "postgresql":
                url = self.engine.url.set(drivername="postgresql")
                self._writer = PostgresWriter(url.render_as_string(hide_password=False))
            else:
                self._writer = SqliteWriter(self.engine)
        return self._writer

    def insert_event(self, topic: str, payload: dict[str, Any]) -> bool:
        """Store one verified event (or reconciliation report) on its own;
        False when its event_id was already there.

        Raises ReplayedSeq when the gateway's seq is already stored under
        another event_id, NotStorable for a value the table cannot hold.
        """
        return self.writer().write_one(StoreRow(topic, payload, canonical_json(payload)))

    insert_reconciliation = insert_event

    def quarantine(self, topic: str, reason: str, payload: bytes, kind: str = "") -> None:
        self.writer().quarantine([QuarantineRow(topic, reason, kind, payload)])

    def quarantined_from(self, source: str) -> int:
        """Rows the quarantine holds from `source` (center/quarantine_cap.py)."""
        with self.engine.connect() as conn:
            return int(conn.scalar(text("SELECT count(*) FROM center_quarantine "
                                        "WHERE source = :source"), {"source": source}) or 0)


def _add_quarantine_kind(conn: Connection) -> None:
    """A database made before quarantine rows had a `kind` gets the column
    (create_all adds tables, never columns); old rows keep kind ''."""
    columns = {column["name"] for column in inspect(conn).get_columns("center_quarantine")}
    if "kind" not in columns:
        conn.execute(text("ALTER TABLE center_quarantine "
                          "ADD COLUMN kind VARCHAR(32) NOT NULL DEFAULT ''"))
    if "source" not in columns:  # likewise for the source the cap counts by
        conn.execute(text("ALTER TABLE center_quarantine "
                          "ADD COLUMN source VARCHAR(64) NOT NULL DEFAULT ''"))
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_center_quarantine_source "
                          "ON center_quarantine (source)"))


def _add_gateway_branch(conn: Connection) -> None:
    """Registrations made before gateways had a branch get the column; their
    gateways stay refused until registered again with a branch."""
    columns = {column["name"] for column in inspect(conn).get_columns("center_gateway_keys")}
    if "branch_id" not in columns:
        conn.execute(text("ALTER TABLE center_gateway_keys "
                          "ADD COLUMN branch_id VARCHAR(32) NOT NULL DEFAULT ''"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an ingested event is acked upstream: keep it
    cursor.execute("PRAGMA busy_timeout=10000")  # shared-subscription peers on one file
    cursor.close()
