"""How the ingest writes a batch, and the SQLite writer.

A writer stores a batch of verified payloads and the batch's quarantined
ones in ONE transaction (`write`), or, when that batch hits a constraint
other than the event_id conflict, one payload at a time (`write_one`,
`quarantine`) so only the offending one is quarantined. The SQLite writer
(the demo's and most tests' center) uses SQLAlchemy Core's executemany;
PostgreSQL has its own (center/pg_writer.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Table, inspect, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlmodel import SQLModel

from posgw.center.batch_sql import sqlite_statements
from posgw.center.case_records import record
from posgw.center.case_state import time_text
from posgw.center.fleet_status import store_statuses
from posgw.center.models import (
    QuarantinedPayload,
    QuarantineOverflow,
    ReceivedEvent,
    ReceivedReconciliation,
    SeenSeq,
)
from posgw.center.quarantine_cap import Overflow
from posgw.center.rows import (
    BatchRefused,
    NotStorable,
    QuarantineRow,
    ReplayedSeq,
    StoreRow,
    StoreUnavailable,
    event_values,
    reconciliation_values,
)


class BatchWriter(Protocol):
    def write(self, rows: Sequence[StoreRow], quarantined: Sequence[QuarantineRow],
              overflow: Overflow | None = None, seen: Seen = (),
              recorded: Recorded = ()) -> set[str]:
        """Store `rows` (distinct event_ids), `quarantined`, the counts of
        quarantined payloads not kept (`overflow`), the (gateway_id, seq)
        of payloads counted (`seen`) and the cases and command replies
        among them (`recorded`: center/case_records.py) in one transaction;
        the event_ids inserted now (the others were held already).
        Raises BatchRefused (nothing written) or StoreUnavailable."""

    def write_one(self, row: StoreRow) -> bool:
        """Store one payload in its own transaction; False when already held.
        Raises ReplayedSeq, NotStorable or StoreUnavailable."""

    def quarantine(self, quarantined: Sequence[QuarantineRow],
                   overflow: Overflow | None = None, seen: Seen = (),
                   recorded: Recorded = ()) -> None:
        """Store quarantined payloads (overflow counts, seen seqs, recorded
        cases and replies) in one transaction."""

    def close(self) -> None: ...


def table_of(model: type[SQLModel]) -> Table:
    """The `Table` of a `table=True` model, typed: SQLModel's stubs do not
    declare the `__table__` its metaclass sets."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


EVENTS, RECONCILIATIONS, QUARANTINE, OVERFLOW, SEEN = (table_of(model) for model in (
    ReceivedEvent, ReceivedReconciliation, QuarantinedPayload, QuarantineOverflow, SeenSeq))
#: (gateway_id, seq) of verified payloads the center counts but does not store
#: among its events.
Seen = Sequence[tuple[str, int]]
#: Verified case.v1 and command-reply.v1 payloads (center/case_records.py),
#: terminal-status.v1 and gateway-status.v1 (center/fleet_status.py).
Recorded = Sequence[dict[str, Any]]


class SqliteWriter:
    """One executemany per table on the store's engine, in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def write(self, rows: Sequence[StoreRow], quarantined: Sequence[QuarantineRow],
              overflow: Overflow | None = None, seen: Seen = (),
              recorded: Recorded = ()) -> set[str]:
        now = datetime.now(UTC)
        try:
            with self._engine.begin() as conn:
                inserted = self._insert(conn, EVENTS, [
                    event_values(row.topic, row.payload, now)
                    for row in rows if not row.is_reconciliation])
                inserted |= self._insert(conn, RECONCILIATIONS, [
                    reconciliation_values(row.topic, row.payload, now)
                    for row in rows if row.is_reconciliation])
                _quarantine(conn, quarantined, overflow, now)
                _seen(conn, seen)
                _recorded(conn, recorded, now)
        except (IntegrityError, DataError) as exc:
            raise BatchRefused(type(exc.orig).__name__) from exc
        except OperationalError as exc:
            raise StoreUnavailable(type(exc.orig).__name__) from exc
        return inserted

    def write_one(self, row: StoreRow) -> bool:
        table = RECONCILIATIONS if row.is_reconciliation else EVENTS
        values = (reconciliation_values if row.is_reconciliation else event_values)(
            row.topic, row.payload)
        try:
            with self._engine.begin() as conn:
                return bool(self._insert(conn, table, [values]))
        except IntegrityError as exc:
            if self._seq_taken(table, values["gateway_id"], values["seq"]):
                raise ReplayedSeq(values["gateway_id"], values["seq"]) from exc
            raise NotStorable(f"not storable: {type(exc.orig).__name__}") from exc
        except DataError as exc:
            raise NotStorable(f"not storable: {type(exc.orig).__name__}") from exc

    def quarantine(self, quarantined: Sequence[QuarantineRow],
                   overflow: Overflow | None = None, seen: Seen = (),
                   recorded: Recorded = ()) -> None:
        if quarantined or overflow or seen or recorded:
            now = datetime.now(UTC)
            with self._engine.begin() as conn:
                _quarantine(conn, quarantined, overflow, now)
                _seen(conn, seen)
                _recorded(conn, recorded, now)

    def close(self) -> None:
        """The engine is the store's: nothing of the writer's own to close."""

    @staticmethod
    def _insert(conn: Connection, table: Table, values: list[dict[str, Any]]) -> set[str]:
        if not values:
            return set()
        statement = (sqlite.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
                     .returning(table.c.event_id))  # returned means inserted now
        return {str(event_id) for event_id in conn.execute(statement, values).scalars()}

    def _seq_taken(self, table: Table, gateway_id: str, seq: int) -> bool:
        query = select(table.c.id).where(table.c.gateway_id == gateway_id, table.c.seq == seq)
        with self._engine.connect() as conn:
            return conn.execute(query).first() is not None


def _quarantine(conn: Connection, quarantined: Sequence[QuarantineRow],
                overflow: Overflow | None, now: datetime) -> None:
    if quarantined:
        conn.execute(QUARANTINE.insert(), [row.values(now) for row in quarantined])
    if overflow:
        statement = sqlite.insert(OVERFLOW)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["source", "kind"],
            set_={"count": OVERFLOW.c.count + statement.excluded.count,
                  "last_at": statement.excluded.last_at}),
            [{"source": source, "kind": kind, "count": count, "last_at": now}
             for (source, kind), count in overflow.items()])


def _seen(conn: Connection, seen: Seen) -> None:
    if seen:
        conn.execute(sqlite.insert(SEEN).on_conflict_do_nothing(),
                     [{"gateway_id": gateway_id, "seq": seq} for gateway_id, seq in seen])


def _recorded(conn: Connection, recorded: Recorded, now: datetime) -> None:
    """Cases and replies in their tables, the latest statuses in theirs
    (each part takes the schemas it keeps and leaves the others)."""
    statements = sqlite_statements(conn)
    record(statements, recorded, time_text(now))
    store_statuses(statements, recorded, now)
