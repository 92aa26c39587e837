"""The gateway store: dedupe key, group commit, schema version, outbox cap."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from posgw.gateway.store import (
    DuplicateRequest,
    GroupCommitter,
    OutboxFull,
    SchemaVersion,
    SchemaVersionMismatch,
    Store,
)
from posgw.gateway.store.models import TerminalRecord
from tests.store.pg import scratch_database
from tests.store.rows import NOW, ledger, outbox


@pytest.fixture
def store(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'gateway.db'}") as opened:
        yield opened


def test_sqlite_runs_in_wal_with_synchronous_full(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


async def test_retransmit_key_rejects_the_second_request_only(store: Store) -> None:
    async with GroupCommitter(store) as committer:
        first = committer.commit(ledger(1), outbox(1))
        repeat = ledger(1)
        repeat.event_id = "ev-other"
        results = await asyncio.gather(first, committer.commit(repeat),
                                       return_exceptions=True)
    assert results[0] == 1
    assert isinstance(results[1], DuplicateRequest)
    found = store.find_request("T0001", "000001", "0314093000")
    assert found is not None and found.response_fields["39"] == "00"


async def test_group_commit_batches_concurrent_callers_and_all_are_durable(
        tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    callers = 200
    with Store(f"sqlite:///{path}") as store:
        async with GroupCommitter(store) as committer:
            seqs = await asyncio.gather(*(committer.commit(ledger(n), outbox(n))
                                          for n in range(callers)))
            batches = committer.batches_committed
    assert sorted(seqs) == list(range(1, callers + 1))
    assert batches < callers
    # A second, raw connection sees every row: they were committed, not cached.
    with sqlite3.connect(path) as other:
        assert other.execute("select count(*) from transactions").fetchone() == (callers,)
        assert other.execute("select count(*) from outbox").fetchone() == (callers,)


async def test_each_caller_resumes_only_after_its_own_rows_are_committed(
        tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    with Store(f"sqlite:///{path}") as store:
        async with GroupCommitter(store) as committer:
            async def commit_and_check(n: int) -> int:
                await committer.commit(ledger(n), outbox(n))
                with sqlite3.connect(path) as other:
                    return other.execute("select count(*) from transactions where stan = ?",
                                         (f"{n:06d}",)).fetchone()[0]
            assert await asyncio.gather(*(commit_and_check(n) for n in range(50))) == [1] * 50


async def test_a_caller_cancelled_after_submitting_still_gets_its_rows_written(
        store: Store) -> None:
    async with GroupCommitter(store) as committer:
        caller = asyncio.create_task(committer.commit(ledger(1), outbox(1)))
        await asyncio.sleep(0)  # submitted: the request is queued
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert await committer.commit(ledger(2), outbox(2)) == 2  # the committer carries on
    assert [row.seq for row in store.pending_outbox(10)] == [1, 2]


async def test_seq_is_stamped_into_the_outbox_payload(store: Store) -> None:
    async with GroupCommitter(store) as committer:
        await committer.commit(ledger(1), outbox(1))
        await committer.commit(ledger(2), outbox(2))
    assert [(row.payload or {})["seq"] for row in store.pending_outbox(10)] == [1, 2]


async def test_sealed_rows_store_the_exact_bytes_to_publish_with_their_seq(
        store: Store) -> None:
    def seal(payload: dict[str, object]) -> bytes:
        return json.dumps(payload, sort_keys=True).encode()

    async with GroupCommitter(store, seal=seal) as committer:
        await asyncio.gather(committer.commit(ledger(1), outbox(1)),
                             committer.commit(ledger(2), outbox(2)))
    sealed = [json.loads(row.wire or b"") for row in store.pending_outbox(10)]
    assert [event["event_id"] for event in sealed] == ["ev-T0001-1", "ev-T0001-2"]
    assert [event["seq"] for event in sealed] == [1, 2]


async def test_outbox_cap_raises_outbox_full_and_writes_nothing(store: Store) -> None:
    async with GroupCommitter(store, outbox_cap=3) as committer:
        for n in range(3):
            await committer.commit(ledger(n), outbox(n))
        with pytest.raises(OutboxFull):
            await committer.commit(ledger(9), outbox(9))
    assert store.outbox_stats().depth == 3
    assert store.find_request("T0001", "000009", "0314093000") is None


async def test_delivered_rows_free_outbox_room(store: Store) -> None:
    async with GroupCommitter(store, outbox_cap=1) as committer:
        await committer.commit(ledger(1), outbox(1))
        store.mark_delivered([row.seq for row in store.pending_outbox(10)], NOW)
        assert await committer.commit(ledger(2), outbox(2)) == 2


async def test_stored_response_may_not_hold_card_fields(store: Store) -> None:
    row = ledger(1)
    row.response_fields = {"39": "00", "2": "4761739001010010"}
    async with GroupCommitter(store) as committer:
        with pytest.raises(ValueError, match="card data") as info:
            await committer.commit(row)
    assert "4761739001010010" not in str(info.value)


def test_outbox_stats_report_depth_and_oldest_age(store: Store) -> None:
    assert store.outbox_stats().depth == 0
    asyncio.run(_commit_some(store, 2))
    stats = store.outbox_stats()
    assert stats.depth == 2 and stats.oldest_created_at == NOW
    assert stats.oldest_age_s(NOW.replace(minute=31)) == 60.0


def test_schema_version_mismatch_refuses_to_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    with Store(url) as store, store.session() as session, session.begin():
        session.execute(update(SchemaVersion).values(version=999))
    with pytest.raises(SchemaVersionMismatch, match="schema version 999"):
        Store(url)


async def test_same_code_runs_on_postgresql() -> None:
    with scratch_database() as url, Store(url) as store:
        async with GroupCommitter(store) as committer:
            seqs = await asyncio.gather(*(committer.commit(ledger(n), outbox(n))
                                          for n in range(20)))
            with pytest.raises(DuplicateRequest):
                await committer.commit(ledger(3))
        assert sorted(seqs) == list(range(1, 21))
        assert store.outbox_stats().oldest_created_at == NOW
        store.close()


async def _commit_some(store: Store, count: int) -> None:
    async with GroupCommitter(store) as committer:
        for n in range(count):
            await committer.commit(ledger(n), outbox(n))


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_terminals_saved_together_insert_new_rows_and_update_known_ones(
        engine: str, tmp_path: Path) -> None:
    def saved(url: str) -> list[tuple[str, str, object]]:
        with Store(url) as store:
            store.save_terminals([TerminalRecord(terminal_id="T1", state="offline",
                                                 registered_at=NOW)])
            store.save_terminals([
                TerminalRecord(terminal_id="T1", state="online", registered_at=NOW,
                               last_seen_at=NOW),
                TerminalRecord(terminal_id="T2", state="online", registered_at=NOW)])
            return [(t.terminal_id, t.state, t.last_seen_at) for t in store.terminals()]

    if engine == "sqlite":
        rows = saved(f"sqlite:///{tmp_path / 'gateway.db'}")
    else:
        with scratch_database() as url:
            rows = saved(url)
    assert rows == [("T1", "online", NOW), ("T2", "online", None)]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_delivered_marks_commit_and_leave_the_connection_durable(
        engine: str, tmp_path: Path) -> None:
    async def marked(url: str) -> tuple[int, list[int]]:
        with Store(url) as store:
            await _commit_some(store, 3)
            store.mark_delivered([row.seq for row in store.pending_outbox(10)], NOW)
            with store.engine.connect() as conn:  # the pool's connection, after the mark
                setting = (conn.exec_driver_sql("PRAGMA synchronous").scalar()
                           if engine == "sqlite" else
                           conn.exec_driver_sql("SHOW synchronous_commit").scalar())
            return store.outbox_stats().depth, [setting]

    if engine == "sqlite":
        depth, settings = await marked(f"sqlite:///{tmp_path / 'gateway.db'}")
        assert settings == [2]  # FULL again
    else:
        with scratch_database() as url:
            depth, settings = await marked(url)
        assert settings == ["on"]  # SET LOCAL ended with the transaction
    assert depth == 0


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_the_highest_rrn_of_a_day_counts_only_full_length_rrns_of_that_day(
        engine: str, tmp_path: Path) -> None:
    async def highest(url: str) -> tuple[str | None, str | None]:
        with Store(url) as store:
            async with GroupCommitter(store) as committer:
                for n, rrn in enumerate(["633900000042", "633900000007", "6339999",
                                         "634000000001", "6339ABCDEFGH", "63390000004A"]):
                    row = ledger(n)
                    row.rrn = rrn
                    await committer.commit(row)
            return store.highest_rrn("6339", 12), store.highest_rrn("6341", 12)

    if engine == "sqlite":
        found = await highest(f"sqlite:///{tmp_path / 'gateway.db'}")
    else:
        with scratch_database() as url:
            found = await highest(url)
    assert found == ("633900000042", None)


@settings(max_examples=25, deadline=None)
@given(gaps=st.lists(st.integers(0, 3), min_size=0, max_size=40), since_s=st.integers(-1, 125))
def test_recent_rows_are_found_by_id_range_exactly_as_a_time_filter_would(
        gaps: list[int], since_s: int) -> None:
    with tempfile.TemporaryDirectory() as folder, \
            Store(f"sqlite:///{Path(folder) / 'gateway.db'}") as store:
        times, at = [], 0
        for gap in gaps:  # a ledger written in time order, several rows a second
            at += gap
            times.append(at)
        asyncio.run(_commit_at(store, times))
        since = NOW + timedelta(seconds=since_s)
        found = [row.event_id for row in store.recent_ledger(since, 1000)]
    assert found == [f"ev-T0001-{n}" for n, t in enumerate(times)
                     if NOW + timedelta(seconds=t) >= since]


async def _commit_at(store: Store, seconds: list[int]) -> None:
    async with GroupCommitter(store) as committer:
        for n, offset in enumerate(seconds):
            row = ledger(n)
            row.occurred_at = NOW + timedelta(seconds=offset)
            await committer.commit(row)
