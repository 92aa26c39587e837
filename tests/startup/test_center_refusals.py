"""`posgw center` (the ingest) refuses a start it cannot make good: one line,
`posgw center: FILE: KEY: REASON`, exit 2, as a config mistake does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.posgw_script import run_posgw, run_posgw_unprivileged
from tests.security.certs import make_pki
from tests.startup.setups import (
    Table,
    assert_refused,
    center_table,
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
