"""BulkInserter: the committer's rows reach the cursor as SQLAlchemy would send them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from posgw.gateway.store import Store
from posgw.gateway.store.bulk import BulkInserter
from posgw.gateway.store.models import OutboxEvent
from tests.store.pg import scratch_database

AT = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)
TABLE = OutboxEvent.__table__  # type: ignore[attr-defined]


def event(seq: int, **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "event_id": f"e{seq}", "seq": seq, "topic": "pos/v1/B/T/tx", "terminal_id": "T1",
        "retain": seq % 2 == 0, "payload": {"seq": seq, "emv": {"9F02": "000000001000"}},
        "wire": b'{"seq":%d}' % seq, "created_at": AT, "delivered_at": None, "attempts": 0}
    return {**values, **changes}


@contextmanager
def opened(engine: str, tmp_path: Path) -> Iterator[Store]:
    if engine == "sqlite":
        with Store(f"sqlite:///{tmp_path / 'gateway.db'}") as store:
            yield store
        return
    with scratch_database() as url, Store(url) as store:
        yield store


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_rows_read_back_with_their_types(engine: str, tmp_path: Path) -> None:
    with opened(engine, tmp_path) as store:
        rows = [event(1), event(2), event(3, terminal_id=None, wire=None)]
        with store.engine.begin() as conn:
            BulkInserter(store.engine.dialect).insert(conn, TABLE, rows)
        with store.engine.connect() as conn:
            stored = conn.execute(select(TABLE).order_by(TABLE.c.seq)).mappings().all()
    assert [{key: row[key] for key in rows[0]} for row in stored] == rows
    assert stored[0]["created_at"].tzinfo is UTC  # UtcDateTime's processors ran


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_left_out_column_gets_its_default_and_a_clash_is_integrity_error(
        engine: str, tmp_path: Path) -> None:
    with opened(engine, tmp_path) as store:
        inserter = BulkInserter(store.engine.dialect)
        short = {key: value for key, value in event(1).items()
                 if key not in ("retain", "attempts")}
        with store.engine.begin() as conn:
            inserter.insert(conn, TABLE, [short, event(2)])  # two column sets, one call
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            inserter.insert(conn, TABLE, [event(3), event(4, event_id="e1")])
        with store.engine.connect() as conn:
            stored = conn.execute(select(TABLE.c.seq, TABLE.c.retain, TABLE.c.attempts)
                                  .order_by(TABLE.c.seq)).all()
    assert [tuple(row) for row in stored] == [(1, False, 0), (2, True, 0)]  # e3 rolled back
