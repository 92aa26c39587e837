"""`CenterStore`: SQLite by default, PostgreSQL by URL, one code path.

Inserts use ON CONFLICT (event_id) DO NOTHING, so a redelivered event
(QoS 1 is at-least-once) is a no-op, also across concurrent subscribers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from center.models import QuarantinedPayload, ReceivedEvent

_TABLES = [ReceivedEvent.__table__, QuarantinedPayload.__table__]  # type: ignore[attr-defined]
#: Quarantined payloads are kept up to this size: enough to inspect, bounded.
MAX_QUARANTINE_TEXT = 16_384


class CenterStore:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            self.engine: Engine = create_engine(parsed, connect_args={"check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(parsed, pool_pre_ping=True)
        SQLModel.metadata.create_all(self.engine, tables=_TABLES)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def insert_event(self, topic: str, payload: dict[str, Any]) -> bool:
        """Store a verified event; False when its event_id was already there."""
        values = _event_values(topic, payload)
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(ReceivedEvent.__table__).values(values)  # type: ignore[attr-defined]
        statement = statement.on_conflict_do_nothing(index_elements=["event_id"]).returning(
            ReceivedEvent.id)  # rowcount is unreliable here; a returned id means inserted
        with self.engine.begin() as conn:
            return conn.execute(statement).scalar() is not None

    def quarantine(self, topic: str, reason: str, payload: bytes) -> None:
        text = payload[:MAX_QUARANTINE_TEXT].decode("utf-8", errors="replace")
        with self.session() as session, session.begin():
            session.add(QuarantinedPayload(topic=topic, reason=reason, payload_text=text,
                                           received_at=datetime.now(UTC)))


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an ingested event is acked upstream: keep it
    cursor.execute("PRAGMA busy_timeout=10000")  # shared-subscription peers on one file
    cursor.close()
