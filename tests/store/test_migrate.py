"""A database made by schema version 3 (PUBACK = delivered) opens as version 4.

Version 3's tables are version 4's without the confirmation columns: the
test makes a current database, takes those columns away and records
version 3, i.e. exactly what a version-3 posgw left on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from posgw.gateway.store import SCHEMA_VERSION, SchemaVersion, Store
from posgw.gateway.store.migrate import STEPS
from tests.store.pg import scratch_database

AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def make_version_3(url: str) -> None:
    with Store(url) as store, store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_outbox_control"))  # it came later, and needs them
        for table, column, _ in STEPS[3]:
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("UPDATE schema_version SET version = 3"))
        for seq, delivered in ((1, AT), (2, None)):  # one delivered at PUBACK, one pending
            conn.execute(text(
                "INSERT INTO outbox (event_id, seq, topic, retain, payload, wire, created_at, "
                "delivered_at, attempts) VALUES (:e, :s, 'pos/v1/B001/T0001/tx', false, '{}', "
                ":w, :c, :d, 0)"),
                {"e": f"ev-{seq}", "s": seq, "w": b"{}", "c": AT.replace(tzinfo=None),
                 "d": delivered and delivered.replace(tzinfo=None)})


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    with scratch_database() as url:
        yield url


def test_a_version_3_database_gains_the_confirmation_columns_and_keeps_its_rows(
        database_url: str) -> None:
    make_version_3(database_url)
    with Store(database_url) as store:
        columns = {c["name"] for c in inspect(store.engine).get_columns("outbox")}
        with store.session() as session:
            version = session.get(SchemaVersion, 1)
        pending = store.pending_outbox(10)
        stats = store.outbox_stats()
    assert version is not None and version.version == SCHEMA_VERSION == 4
    assert {"published_at", "quarantine_reason"} <= columns
    assert [row.event_id for row in pending] == ["ev-2"]  # delivered stays delivered
    assert (stats.depth, stats.published) == (1, 0)


def test_the_migrated_database_opens_again_without_migrating(database_url: str) -> None:
    make_version_3(database_url)
    Store(database_url).close()
    with Store(database_url) as store:
        assert store.confirm(["ev-2"], {}, AT) == 1
        assert store.outbox_stats().depth == 0


def test_an_index_added_since_the_database_was_made_is_created_on_open(
        database_url: str) -> None:
    """ix_outbox_control (control rows ahead of a backlog) came without a
    schema version: a database made before it gains it when opened."""
    with Store(database_url) as store, store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_outbox_control"))
    with Store(database_url) as store:
        indexes = {index["name"] for index in inspect(store.engine).get_indexes("outbox")}
    assert "ix_outbox_control" in indexes


def test_the_control_rows_are_found_through_their_index(tmp_path: Path) -> None:
    """Without it, each look for a command reply read every pending row."""
    with Store(f"sqlite:///{tmp_path / 'gateway.db'}") as store:
        query = store.pending_query(64, 0, control_only=True).compile(
            store.engine, compile_kwargs={"literal_binds": True})
        with store.engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").all()
    assert "USING INDEX ix_outbox_control" in " ".join(str(step) for step in plan)
