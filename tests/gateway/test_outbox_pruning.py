"""Delivered outbox rows do not pile up for ever (issue 17, finding 5): the
running daemon prunes those done before `[store] keep_delivered_days`, in
the background; what is not done, what is recent, and the row holding the
highest seq stay."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import col, select

from posgw.gateway.store import OutboxEvent, Store
from posgw.sandbox.ports import free_port, port_accepts
from tests.brokers import shared_broker_port
from tests.center_key import center_public_key
from tests.e2e.harness import config_table, wait_for, write_toml
from tests.posgw_script import POSGW

NOW = datetime.now(UTC)


def event(seq: int, *, created: datetime, delivered: datetime | None) -> OutboxEvent:
    return OutboxEvent(event_id=f"ev-{seq}", seq=seq, topic="pos/v1/E2E/gateway/test",
                       payload={"seq": seq}, created_at=created, delivered_at=delivered)


def seqs(database: str) -> set[int]:
    with Store(database) as store, store.session() as session:
        return set(session.scalars(select(col(OutboxEvent.seq))))


def test_the_daemon_prunes_delivered_rows_past_their_retention(tmp_path: Path) -> None:
    listen = free_port()
    table = config_table(tmp_path, shared_broker_port(), listen_port=listen)
    table["keys"]["center_public_key"] = center_public_key()
    database = table["gateway"]["database"]
    # The default retention, [store] keep_delivered_days = 7.
    old, recent = NOW - timedelta(days=10), NOW - timedelta(days=1)
    with Store(database) as store, store.session() as session, session.begin():
        session.add_all([event(seq, created=old, delivered=old) for seq in range(1, 2501)])
        session.add(event(2501, created=recent, delivered=recent))  # delivered yesterday
        session.add(event(2502, created=old, delivered=None))  # never delivered
    config = write_toml(tmp_path / "gw.toml", table)
    with (tmp_path / "gw.log").open("wb") as out:
        daemon = subprocess.Popen([POSGW, "run", "-c", str(config)], stdout=out, stderr=out)
    try:
        wait_for(lambda: port_accepts(listen), "the listener")
        wait_for(lambda: min(seqs(database)) > 2500, "the old delivered rows pruned")
        assert {2501, 2502} <= seqs(database)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0


def test_the_row_with_the_highest_seq_stays_so_seq_never_goes_back(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'gw.db'}"
    old = NOW - timedelta(days=30)
    with Store(database) as store:
        with store.session() as session, session.begin():
            session.add_all([event(seq, created=old, delivered=old) for seq in (1, 2, 3)])
        assert store.prune_delivered(NOW, limit=1000) == 2
        assert store.max_seq() == 3
