"""The private PostgreSQL launcher: a real server of our own, crashed and started again.

Skipped where the server binaries are not installed; never touches the
machine's shared PostgreSQL on 5432.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from posgw.sandbox.ports import port_accepts
from posgw.sandbox.postgres import PostgresUnavailable, PrivatePostgres, postgres_bin_dir

needs_postgres = pytest.mark.skipif(
    postgres_bin_dir() is None,
    reason="PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")


def connect(server: PrivatePostgres) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host="127.0.0.1", port=server.port, user="postgres",
                           dbname="postgres", autocommit=True, connect_timeout=5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivatePostgres]:
    with PrivatePostgres(tmp_path / "postgres.log") as running:
        yield running


@needs_postgres
def test_serves_on_its_own_loopback_port_not_the_shared_one(server: PrivatePostgres) -> None:
    assert server.port != 5432 and server.running
    assert server.url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"
    with connect(server) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW port").fetchone() == (str(server.port),)


@needs_postgres
def test_a_committed_row_survives_a_crash_and_restart_on_the_same_port(
        server: PrivatePostgres) -> None:
    with connect(server) as conn:
        conn.execute("CREATE TABLE kept (n integer)")
        conn.execute("INSERT INTO kept VALUES (7)")
    port = server.port
    server.crash()
    assert not server.running and not port_accepts(port)
    server.start()
    assert server.port == port
    with connect(server) as conn:
        assert conn.execute("SELECT n FROM kept").fetchall() == [(7,)]
    # An immediate stop skips the shutdown checkpoint: the start had to recover.
    assert "not properly shut down" in server.log.read_text()


@needs_postgres
def test_a_crash_drops_open_connections(server: PrivatePostgres) -> None:
    conn = connect(server)
    try:
        server.crash()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()


@needs_postgres
def test_leaving_the_block_stops_it_and_removes_its_data(tmp_path: Path) -> None:
    with PrivatePostgres(tmp_path / "postgres.log") as server:
        assert (server.data / "PG_VERSION").exists()
    assert not server.running and not port_accepts(server.port)
    assert not server.folder.exists()


def test_without_the_server_binaries_it_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable, match=r"initdb.*not found in .*apt-get install"):
        PrivatePostgres(tmp_path / "postgres.log", bin_dir=tmp_path)
