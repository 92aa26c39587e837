"""The PostgreSQL writer: raw psycopg on one long-lived connection.

A batch is one transaction of at most three statements: the events as ONE
prepared `INSERT ... SELECT FROM unnest(<one array per column>)` (into the
dedupe table and the partitioned events table at once, center/pg_schema.py),
the reconciliation reports likewise, and the quarantined payloads. One
round trip per table whatever the batch size: measured against
`executemany` of a prepared single-row INSERT (pipelined) and against COPY
into a temporary table then INSERT ... SELECT, unnest was as fast as COPY
for batches of a few hundred and needs no temporary table
(docs/center.md, "Batches").

No SQLAlchemy here: its per-statement compilation, pool checkout and
pre-ping cost more CPU than the insert itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from posgw.center.batch_sql import psycopg_statements
from posgw.center.case_records import record
from posgw.center.case_state import time_text
from posgw.center.fleet_status import store_statuses
from posgw.center.pg_schema import (
    EVENT_COLUMNS,
    EVENT_IDS_TABLE,
    PARTITION_LOCK_KEY,
    month_of,
    partition_ddl,
)
from posgw.center.quarantine_cap import Overflow
from posgw.center.rows import (
    MAX_REASON,
    MAX_SOURCE,
    MAX_TOPIC,
    BatchRefused,
    NotStorable,
    QuarantineRow,
    ReplayedSeq,
    StoreRow,
    StoreUnavailable,
    reconciliation_values,
)
from posgw.center.writer import Recorded, Seen

CONNECT_TIMEOUT_S = 10
_ARRAY_TYPE = {"integer": "bigint[]", "timestamptz": "timestamptz[]"}
_RECONCILIATION_COLUMNS = (("event_id", "text"), ("topic", "text"), ("branch_id", "text"),
                           ("gateway_id", "text"), ("seq", "integer"), ("terminal_id", "text"),
                           ("outcome", "text"), ("batch_closed_at", "text"), ("payload", "json"))


def _unnest(columns: Sequence[tuple[str, str]]) -> tuple[str, str, str]:
    """(the unnest of one array parameter per column AS b(names), the
    column list, the select list with the payload text cast to json)."""
    arrays = ", ".join(f"%s::{_ARRAY_TYPE.get(kind, 'text[]')}" for _, kind in columns)
    names = ", ".join(name for name, _ in columns)
    selected = ", ".join("payload::json" if name == "payload" else name for name, _ in columns)
    return f"unnest({arrays}) AS b({names})", names, selected


#: How each events column is taken from the payload, server-side: the batch
#: travels as the topics' array and ONE JSON array of the payloads as
#: received, and PostgreSQL parses each payload once (jsonb). Building 22
#: Python arrays, or an array of payload texts (psycopg escapes every quote
#: in it), cost more client CPU than the whole insert (docs/center.md). Semantics as
#: rows.event_values: a missing merchant_id is "", entry_mode "unknown",
#: pan_last4 the masked PAN's last four, the day the first ten characters of
#: occurred_at; an integer too large for its column fails the batch.
_FROM_PAYLOAD = {
    "topic": "b.topic", "seq": "(j->>'seq')::integer",
    "merchant_id": "coalesce(j->>'merchant_id', '')",
    "amount_minor": "(j->>'amount_minor')::integer",
    "pan_last4": "nullif(right(j->>'pan_masked', 4), '')",
    "entry_mode": "coalesce(j->>'entry_mode', 'unknown')",
    "occurred_date": "left(j->>'occurred_at', 10)", "payload": "b.payload::json",
    "received_at": "now()",
}
_EVENT_NAMES = ", ".join(name for name, _ in EVENT_COLUMNS)
_EVENT_VALUES = ", ".join(_FROM_PAYLOAD.get(name, f"j->>'{name}'") for name, _ in EVENT_COLUMNS)
_BATCH = ("SELECT t.topic, p.payload, p.payload::jsonb AS j "
          "FROM unnest(%s::text[]) WITH ORDINALITY AS t(topic, n) "
          "JOIN json_array_elements(%s::json) WITH ORDINALITY AS p(payload, n) USING (n)")


def _event_statements() -> tuple[str, str]:
    """(partitioned, legacy) event INSERTs; both return the event_ids inserted now."""
    partitioned = (
        f"WITH batch AS ({_BATCH}), fresh AS ("
        f"INSERT INTO {EVENT_IDS_TABLE} (event_id, gateway_id, seq, occurred_date) "
        "SELECT j->>'event_id', j->>'gateway_id', (j->>'seq')::integer, "
        "left(j->>'occurred_at', 10) FROM batch "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id) "
        f"INSERT INTO center_events ({_EVENT_NAMES}) SELECT {_EVENT_VALUES} "
        "FROM batch AS b JOIN fresh ON fresh.event_id = b.j->>'event_id' RETURNING event_id")
    legacy = (f"INSERT INTO center_events ({_EVENT_NAMES}) SELECT {_EVENT_VALUES} "
              f"FROM ({_BATCH}) AS b ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
    return partitioned, legacy


PARTITIONED_EVENTS, LEGACY_EVENTS = _event_statements()
_R_SOURCE, _R_NAMES, _R_SELECTED = _unnest(_RECONCILIATION_COLUMNS)
RECONCILIATIONS = (f"INSERT INTO center_reconciliations ({_R_NAMES}, received_at) "
                   f"SELECT {_R_SELECTED}, now() FROM {_R_SOURCE} "
                   "ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
QUARANTINE = ("INSERT INTO center_quarantine "
              "(topic, reason, kind, source, payload_text, received_at) "
              "VALUES (%s, %s, %s, %s, %s, now())")
SEEN = ("INSERT INTO center_seen_seqs (gateway_id, seq) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING")
OVERFLOW = ("INSERT INTO center_quarantine_overflow (source, kind, count, last_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (source, kind) DO UPDATE SET "
            "count = center_quarantine_overflow.count + EXCLUDED.count, last_at = now()")


class PostgresWriter:
    """Owns one psycopg connection, made on first use and again after a failure."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None
        self._partitioned = True
        self._months: set[date] = set()  # partitions known to exist

    def write(self, rows: Sequence[StoreRow], quarantined: Sequence[QuarantineRow],
              overflow: Overflow | None = None, seen: Seen = (),
              recorded: Recorded = ()) -> set[str]:
        try:
            return self._in_transaction(rows, quarantined, overflow, seen, recorded)
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            raise BatchRefused(type(exc).__name__) from exc

    def write_one(self, row: StoreRow) -> bool:
        try:
            return bool(self._in_transaction([row], []))
        except psycopg.errors.UniqueViolation as exc:
            if "gateway_seq" in (exc.diag.constraint_name or ""):
                raise ReplayedSeq(str(row.payload["gateway_id"]), int(row.payload["seq"])) from exc
            raise NotStorable(f"not storable: {type(exc).__name__}") from exc
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            raise NotStorable(f"not storable: {type(exc).__name__}") from exc

    def quarantine(self, quarantined: Sequence[QuarantineRow],
                   overflow: Overflow | None = None, seen: Seen = (),
                   recorded: Recorded = ()) -> None:
        self._in_transaction([], quarantined, overflow, seen, recorded)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _in_transaction(self, rows: Sequence[StoreRow], quarantined: Sequence[QuarantineRow],
                        overflow: Overflow | None = None, seen: Seen = (),
                        recorded: Recorded = ()) -> set[str]:
        events = [row for row in rows if not row.is_reconciliation]
        reports = [row for row in rows if row.is_reconciliation]
        try:
            conn = self._connection()
            self._ensure_partitions(conn, events)
            with conn.transaction(), conn.cursor() as cursor:
                inserted = _returned(cursor, PARTITIONED_EVENTS if self._partitioned
                                     else LEGACY_EVENTS, _event_arrays(events))
                inserted |= _returned(cursor, RECONCILIATIONS, _reconciliation_arrays(reports))
                if quarantined:
                    cursor.executemany(QUARANTINE, [_quarantine_params(row)
                                                    for row in quarantined])
                if overflow:
                    cursor.executemany(OVERFLOW, [(source, kind, count) for (source, kind), count
                                                  in overflow.items()])
                if seen:
                    cursor.executemany(SEEN, list(seen))
                if recorded:
                    statements = psycopg_statements(cursor)
                    store_statuses(statements, recorded, datetime.now(UTC), lock=True)
                    record(statements, recorded, time_text(datetime.now(UTC)),
                           lock=" FOR UPDATE")
        except (psycopg.IntegrityError, psycopg.DataError):
            raise  # the transaction was rolled back; the connection is fine
        except psycopg.Error as exc:
            self.close()  # broken or in doubt: a fresh connection next time
            raise StoreUnavailable(type(exc).__name__) from exc
        return inserted

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True,
                                         connect_timeout=CONNECT_TIMEOUT_S)
            kind = self._conn.execute(
                "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass('center_events')"
            ).fetchone()
            self._partitioned = kind is not None and kind[0] == "p"
        return self._conn

    def _ensure_partitions(self, conn: psycopg.Connection[Any], events: Sequence[StoreRow]
                           ) -> None:
        """Make the months this batch needs, each once per process; serialised
        across center processes by an advisory lock."""
        if not self._partitioned:
            return
        months = {month_of(str(row.payload["occurred_at"])[:10]) for row in events}
        wanted = {month for month in months if month is not None} - self._months
        for month in sorted(wanted):
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_KEY,))
                conn.execute(partition_ddl(month))
            self._months.add(month)


def _returned(cursor: psycopg.Cursor[Any], statement: str,
              arrays: Sequence[Any] | None) -> set[str]:
    if arrays is None:
        return set()
    cursor.execute(statement, arrays, prepare=True)
    return {str(event_id) for (event_id,) in cursor.fetchall()}


def _event_arrays(rows: Sequence[StoreRow]) -> list[Any] | None:
    if not rows:
        return None
    return [[row.topic for row in rows], "[" + ",".join(_payload_text(row) for row in rows) + "]"]


def _reconciliation_arrays(rows: Sequence[StoreRow]) -> list[list[Any]] | None:
    if not rows:
        return None
    values = [reconciliation_values(row.topic, row.payload) for row in rows]
    texts = [_payload_text(row) for row in rows]
    return [texts if name == "payload" else [value[name] for value in values]
            for name, _ in _RECONCILIATION_COLUMNS]


def _quarantine_params(row: QuarantineRow) -> tuple[str, str, str, str, str]:
    return (row.topic[:MAX_TOPIC], row.reason[:MAX_REASON], row.kind,  # received_at: now()
            row.source[:MAX_SOURCE], row.stored_text())


def _payload_text(row: StoreRow) -> str:
    """The message as received (it parsed as this payload), not dumped again."""
    try:
        return row.raw.decode("utf-8")
    except UnicodeDecodeError:  # JSON in UTF-16/32: rare, and still the same payload
        return json.dumps(row.payload)
