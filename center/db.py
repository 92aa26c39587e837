"""`CenterStore`: SQLite by default, PostgreSQL by URL, one code path.

Inserts use ON CONFLICT (event_id) DO NOTHING, so a redelivered event
(QoS 1 is at-least-once) is a no-op, also across concurrent subscribers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, create_engine

from posgw.center.models import (
    GatewayKey,
    QuarantinedPayload,
    ReceivedEvent,
    ReceivedReconciliation,
)
from posgw.protocols.redact import mask_pan


def _table(model: type[SQLModel]) -> Table:
    """The `Table` of a `table=True` model, typed: SQLModel's stubs do not
    declare the `__table__` its metaclass sets."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


_TABLES = [_table(model) for model in (
    ReceivedEvent, QuarantinedPayload, GatewayKey, ReceivedReconciliation)]
#: Quarantined payloads are kept up to this size: enough to inspect, bounded.
MAX_QUARANTINE_TEXT = 16_384
#: Any constant works: it only has to be the same in every center process.
SCHEMA_LOCK_KEY = 0x706F7367_63656E74  # "posgcent"
MAX_TOPIC = 256  # the column sizes of QuarantinedPayload
MAX_REASON = 256
#: PANs are 13-19 digits in practice (ISO/IEC 7812); RRNs (12) stay readable.
_LONG_DIGIT_RUN = re.compile(r"\d{13,}")


class CenterStore:
    """The center's database. `create=False` opens it for reading only as it
    is (queries), never creating tables or, for SQLite, the file."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if not create and not Path(parsed.database or "").is_file():
                raise FileNotFoundError(f"no center database at {parsed.database}")
            self.engine: Engine = create_engine(parsed, connect_args={"check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(parsed, pool_pre_ping=True)
        if create:
            self._create_tables()

    def _create_tables(self) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Center processes started together would race CREATE TABLE
                # (a duplicate-type error on PostgreSQL): one at a time.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": SCHEMA_LOCK_KEY})
            SQLModel.metadata.create_all(conn, tables=_TABLES)
            _add_quarantine_kind(conn)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def insert_event(self, topic: str, payload: dict[str, Any]) -> bool:
        """Store a verified event; False when its event_id was already there.

        Raises ReplayedSeq when the gateway's seq is already stored under
        another event_id.
        """
        return self._insert_once(ReceivedEvent, _event_values(topic, payload))

    def insert_reconciliation(self, topic: str, payload: dict[str, Any]) -> bool:
        """Store a verified reconciliation report; as `insert_event` otherwise."""
        return self._insert_once(ReceivedReconciliation, {
            "event_id": payload["event_id"], "topic": topic, "branch_id": payload["branch_id"],
            "gateway_id": payload["gateway_id"], "seq": int(payload["seq"]),
            "terminal_id": payload["terminal_id"], "outcome": payload["outcome"],
            "batch_closed_at": payload["batch_closed_at"], "payload": payload,
            "received_at": datetime.now(UTC)})

    def _insert_once(self, model: Any, values: dict[str, Any]) -> bool:
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(model.__table__).values(values)
        statement = statement.on_conflict_do_nothing(index_elements=["event_id"]).returning(
            model.id)  # rowcount is unreliable here; a returned id means inserted
        try:
            with self.engine.begin() as conn:
                return conn.execute(statement).scalar() is not None
        except IntegrityError as exc:
            if self._seq_taken(model, values["gateway_id"], values["seq"]):
                raise ReplayedSeq(values["gateway_id"], values["seq"]) from exc
            raise

    def _seq_taken(self, model: Any, gateway_id: str, seq: int) -> bool:
        query = select(model.id).where(model.gateway_id == gateway_id, model.seq == seq)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def quarantine(self, topic: str, reason: str, payload: bytes, kind: str = "") -> None:
        text = _without_card_numbers(
            payload[:MAX_QUARANTINE_TEXT].decode("utf-8", errors="replace"))
        with self.session() as session, session.begin():
            session.add(QuarantinedPayload(topic=topic[:MAX_TOPIC], reason=reason[:MAX_REASON],
                                           kind=kind, payload_text=text,
                                           received_at=datetime.now(UTC)))


class ReplayedSeq(Exception):
    """An event whose (gateway, seq) is stored under another event_id."""

    def __init__(self, gateway_id: str, seq: int) -> None:
        super().__init__(f"seq {seq} of gateway {gateway_id} was already received "
                         "under another event_id (replay or forgery)")


def _event_values(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    masked = payload.get("pan_masked")
    occurred_at = str(payload["occurred_at"])
    return {
        "event_id": payload["event_id"], "topic": topic,
        "branch_id": payload["branch_id"], "gateway_id": payload["gateway_id"],
        "seq": int(payload["seq"]), "status": payload["status"], "kind": payload["kind"],
        "terminal_id": payload["terminal_id"], "merchant_id": payload.get("merchant_id", ""),
        "stan": payload["stan"], "rrn": payload.get("rrn"), "auth_code": payload.get("auth_code"),
        "response_code": payload.get("response_code"),
        "amount_minor": int(payload["amount_minor"]), "currency": payload["currency"],
        "pan_masked": masked, "pan_last4": masked[-4:] if masked else None,
        "pan_token": payload.get("pan_token"), "entry_mode": payload.get("entry_mode", "unknown"),
        "occurred_at": occurred_at, "occurred_date": occurred_at[:10],
        "payload": payload, "received_at": datetime.now(UTC),
    }


def _add_quarantine_kind(conn: Connection) -> None:
    """A database made before quarantine rows had a `kind` gets the column
    (create_all adds tables, never columns); old rows keep kind ''."""
    columns = {column["name"] for column in inspect(conn).get_columns("center_quarantine")}
    if "kind" not in columns:
        conn.execute(text("ALTER TABLE center_quarantine "
                          "ADD COLUMN kind VARCHAR(32) NOT NULL DEFAULT ''"))


def _without_card_numbers(text: str) -> str:
    """A rejected payload comes from an untrusted or broken sender and may hold
    a PAN in clear: mask every long run of digits before it is stored."""
    return _LONG_DIGIT_RUN.sub(lambda match: mask_pan(match.group()), text)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an ingested event is acked upstream: keep it
    cursor.execute("PRAGMA busy_timeout=10000")  # shared-subscription peers on one file
    cursor.close()
