"""Run by hand (umask 022, no systemd UMask=0077), the daemons still make
what they create private: key folders 0700, databases and their -wal and
-shm files 0600, evidence 0700/0400. Before, the keys folder came out 0755
and the databases 0644: readable by every local user."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from posgw.center.db import CenterStore
from posgw.gateway.config import parse_config
from posgw.gateway.daemon import Gateway
from posgw.gateway.evidence import EvidenceStore
from posgw.gateway.security.keys import generate_keys
from posgw.gateway.store import Store
from tests.startup.setups import gateway_table


@pytest.fixture(autouse=True)
def common_umask() -> Iterator[None]:
    """What a shell gives `posgw run` outside systemd."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_fresh_gateway_makes_its_keys_folder_0700_and_its_database_0600(
        tmp_path: Path) -> None:
    gateway, stop = Gateway(parse_config(gateway_table(tmp_path), "gateway.toml")), asyncio.Event()
    running = asyncio.create_task(gateway.run(stop))
    try:
        await gateway.ready.wait()
        database = tmp_path / "gateway.db"
        # While it runs, in WAL mode: the -wal and -shm files exist too.
        assert {path.name: mode(path) for path in tmp_path.glob("gateway.db*")} == {
            "gateway.db": 0o600, "gateway.db-wal": 0o600, "gateway.db-shm": 0o600}
        assert database.exists()
        keys = tmp_path / "keys"
        assert (mode(keys), mode(keys / "vault")) == (0o700, 0o700)
        assert {mode(keys / name) for name in ("token.key", "signing.key")} == {0o600}
    finally:
        stop.set()
        await running


def test_a_fresh_center_database_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    try:
        with store.engine.connect() as conn:  # held open: the -wal and -shm stay
            conn.execute(text("SELECT count(*) FROM center_events"))
            assert {path.name: mode(path) for path in tmp_path.glob("center.db*")} == {
                "center.db": 0o600, "center.db-wal": 0o600, "center.db-shm": 0o600}
    finally:
        store.close()


def test_a_database_others_could_read_is_made_0600_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "gateway.db"
    Store(f"sqlite:///{database}").close()
    os.chmod(database, 0o644)  # as an earlier version, run by hand, left it
    Store(f"sqlite:///{database}").close()
    assert mode(database) == 0o600
    assert any(str(database) in record.message and "0600" in record.message
               for record in caplog.records)


def test_new_keys_go_into_a_0700_folder(tmp_path: Path) -> None:
    generate_keys(tmp_path / "branch" / "keys")
    assert mode(tmp_path / "branch" / "keys") == 0o700


def test_evidence_is_kept_in_a_0700_folder_read_only_to_its_owner(tmp_path: Path) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear customer service, ...\n")
    files = EvidenceStore(tmp_path / "evidence", max_bytes=1 << 20)
    item = files.put(letter, submitted_by="desk")
    assert mode(tmp_path / "evidence") == 0o700
    assert mode(files.path_for(item.sha256)) == 0o400
