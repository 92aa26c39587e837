"""`posgw run` refuses a start it cannot make good in one line, exit 2.

Each case is a deployment mistake an operator makes (a port another
process holds, a database folder that is missing, a PostgreSQL role not
created yet, a TLS file not copied, a keys folder others may read). The
daemon says which key of which file is at fault and exits 2, which the
unit's RestartPreventExitStatus=2 keeps systemd from retrying every 5 s.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from posgw.gateway.security.keys import generate_keys
from tests.posgw_script import run_posgw, run_posgw_unprivileged
from tests.security.certs import make_pki
from tests.startup.setups import (
    Table,
    assert_refused,
    gateway_table,
    listener,
    write_toml,
)

#: A refused start answers within seconds; one that is not refused runs until this.
TIMEOUT_S = 30
#: TEST-NET-1 (RFC 5737): never an address of this machine.
NOT_LOCAL = "192.0.2.1"


@pytest.fixture
def table(tmp_path: Path) -> Table:
    return gateway_table(tmp_path)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another process listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def start(config: Path, *, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    runner = run_posgw_unprivileged if unprivileged else run_posgw
    return runner("run", "-c", str(config), "--log-level", "error", timeout=TIMEOUT_S)


def refused(tmp_path: Path, table: Table, key: str, *reason: str,
            unprivileged: bool = False, status: int = 2) -> str:
    config = write_toml(tmp_path / "gateway.toml", table)
    return assert_refused(start(config, unprivileged=unprivileged), "run", config, key, *reason,
                          status=status)


# -- ports and addresses -------------------------------------------------------------


def test_a_listener_port_in_use_is_named(tmp_path: Path, table: Table, held_port: int) -> None:
    table["listeners"] = [listener(f"127.0.0.1:{held_port}")]
    refused(tmp_path, table, "listeners[0].bind", f"127.0.0.1:{held_port}", "in use")


def test_a_metrics_port_in_use_is_named(tmp_path: Path, table: Table, held_port: int) -> None:
    table["metrics"] = {"bind": f"127.0.0.1:{held_port}"}
    refused(tmp_path, table, "metrics.bind", "in use")


def test_a_listener_host_that_does_not_resolve_is_named(tmp_path: Path, table: Table) -> None:
    table["listeners"] = [listener("127.0.0.1:0"), listener("no-such-host.invalid:9001")]
    refused(tmp_path, table, "listeners[1].bind", "no-such-host.invalid", "does not resolve")


@pytest.mark.parametrize("section", ["listeners", "metrics"])
def test_an_address_of_another_machine_is_named(tmp_path: Path, table: Table,
                                                section: str) -> None:
    if section == "listeners":
        table["listeners"] = [listener(f"{NOT_LOCAL}:9001")]
    else:
        table["metrics"] = {"bind": f"{NOT_LOCAL}:9464"}
    key = "listeners[0].bind" if section == "listeners" else "metrics.bind"
    refused(tmp_path, table, key, NOT_LOCAL, "not an address of this machine")


# -- the keys folder -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o755, 0o777, 0o750])
def test_a_keys_folder_group_or_others_may_enter_is_refused(tmp_path: Path, table: Table,
                                                            mode: int) -> None:
    keys = tmp_path / "keys"
    generate_keys(keys)
    os.chmod(keys, mode)
    refused(tmp_path, table, "keys.dir", f"mode {mode:04o}", f"chmod 700 {keys}")


def test_a_vault_folder_group_or_others_may_enter_is_refused(tmp_path: Path,
                                                             table: Table) -> None:
    keys = tmp_path / "keys"
    generate_keys(keys)
    os.chmod(keys / "vault", 0o755)
    refused(tmp_path, table, "keys.dir", f"chmod 700 {keys / 'vault'}")


@pytest.mark.parametrize(("name", "mode"), [("token.key", 0o644), ("signing.key", 0o666),
                                            ("vault/v1.key", 0o640)])
def test_a_key_file_group_or_others_may_read_is_refused(tmp_path: Path, table: Table,
                                                        name: str, mode: int) -> None:
    keys = tmp_path / "keys"
    generate_keys(keys)
    os.chmod(keys / name, mode)
    refused(tmp_path, table, "keys.dir", f"mode {mode:04o}", f"chmod 600 {keys / name}")


def test_a_keys_folder_the_daemon_cannot_read_is_named(tmp_path: Path, table: Table) -> None:
    keys = tmp_path / "keys"
    generate_keys(keys)
    os.chmod(keys, 0o000)
    try:
        refused(tmp_path, table, "keys.dir", str(keys), "not readable", unprivileged=True)
    finally:
        os.chmod(keys, 0o700)  # so pytest can clean up


def test_a_keys_folder_that_cannot_be_created_is_named(tmp_path: Path, table: Table) -> None:
    parent = tmp_path / "readonly"
    parent.mkdir(mode=0o500)
    table["keys"]["dir"] = str(parent / "keys")
    refused(tmp_path, table, "keys.dir", str(parent), "not writable", unprivileged=True)


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
