"""`posgw center` (the ingest) refuses a start it cannot make good: one line,
`posgw center: FILE: KEY: REASON`, exit 2, as a config mistake does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posgw.sandbox.ports import free_port
from tests.posgw_script import run_posgw, run_posgw_unprivileged
from tests.security.certs import make_pki
from tests.startup.setups import (
    Table,
    assert_refused,
    center_table,
    require_postgres,
    write_toml,
)

TIMEOUT_S = 30


@pytest.fixture
def table(tmp_path: Path) -> Table:
    return center_table(tmp_path)


def refused(tmp_path: Path, table: Table, key: str, *reason: str, unprivileged: bool = False,
            what: str = "center", status: int = 2) -> str:
    """`what`: "center config" for what is checked as the file is read."""
    config = write_toml(tmp_path / "center.toml", table)
    runner = run_posgw_unprivileged if unprivileged else run_posgw
    ran = runner("center", "-c", str(config), timeout=TIMEOUT_S)
    return assert_refused(ran, what, config, key, *reason, status=status)


def test_a_database_folder_that_is_missing_is_named(tmp_path: Path, table: Table) -> None:
    table["center"]["database"] = f"sqlite:///{tmp_path / 'no-such-folder' / 'center.db'}"
    refused(tmp_path, table, "center.database", str(tmp_path / "no-such-folder"),
            "does not exist")


def test_a_database_folder_the_center_cannot_write_is_named(tmp_path: Path,
                                                            table: Table) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir(mode=0o500)
    table["center"]["database"] = f"sqlite:///{folder / 'center.db'}"
    refused(tmp_path, table, "center.database", str(folder), "not writable", unprivileged=True)


@pytest.mark.parametrize(("user", "database", "missing"), [
    ("posgw_no_such_role", "test", 'role "posgw_no_such_role" does not exist'),
    ("postgres", "posgw_no_such_db", 'database "posgw_no_such_db" does not exist'),
])
def test_a_postgresql_role_or_database_that_does_not_exist_is_named(
        tmp_path: Path, table: Table, user: str, database: str, missing: str) -> None:
    server = require_postgres()
    table["center"]["database"] = f"postgresql+psycopg://{user}@{server}/{database}"
    refused(tmp_path, table, "center.database", missing)


def test_a_postgresql_server_not_up_yet_exits_1_so_systemd_tries_again(
        tmp_path: Path, table: Table) -> None:
    table["center"]["database"] = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    refused(tmp_path, table, "center.database", "Connection refused", status=1)


@pytest.mark.parametrize("missing", ["tls_ca", "tls_cert", "tls_key"])
def test_a_missing_tls_file_is_named(tmp_path: Path, table: Table, missing: str) -> None:
    for key in ("tls_ca", "tls_cert", "tls_key"):
        path = tmp_path / f"{key}.pem"
        if key != missing:
            path.write_text("-----BEGIN PLACEHOLDER-----\n")
        table["mqtt"][key] = str(path)
    refused(tmp_path, table, f"mqtt.{missing}", f"{missing}.pem", "no such file",
            what="center config")


def test_a_command_key_others_may_read_is_refused(tmp_path: Path, table: Table) -> None:
    key = tmp_path / "hq" / "command.key"
    os.chmod(key, 0o644)
    refused(tmp_path, table, "center.command_key", f"chmod 600 {key}")


@pytest.mark.parametrize(("key", "reason"), [
    ("tls_ca", "no CA certificate in it"),
    ("tls_cert", "not a PEM certificate"),
    ("tls_key", "not the private key of"),
])
def test_a_tls_file_that_cannot_be_used_is_named(tmp_path: Path, table: Table, key: str,
                                                 reason: str) -> None:
    # Found only at connect time before, then retried every few seconds forever.
    pki = make_pki(tmp_path / "pki")
    files = {"tls_ca": pki.ca, "tls_cert": pki.client.cert, "tls_key": pki.client.key}
    if key == "tls_key":
        files["tls_key"] = pki.server.key  # a key, but another certificate's
    else:
        files[key] = tmp_path / "notes.txt"
        files[key].write_text("not a certificate\n")
    table["mqtt"].update({name: str(path) for name, path in files.items()})
    refused(tmp_path, table, f"mqtt.{key}", reason)
