"""`posgw run` as its own process on loopback, for attacks on its listener.

The daemon's stderr goes to a file the test reads; the listener's port is
chosen here, so the attacker knows where to dial before the daemon is up.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posgw.gateway.store import Store
from posgw.sandbox.ports import free_port, port_accepts
from posgw.sandbox.processes import wait_until
from tests.brokers import shared_broker_port
from tests.e2e.harness import config_table, write_toml
from tests.posgw_script import POSGW

START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 60.0  # DRAIN_TIMEOUT_S + FLUSH_TIMEOUT_S, on a loaded machine


@dataclass(slots=True)
class Daemon:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    database: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def daemon_config(workdir: Path, listener: dict[str, Any],
                  **sections: dict[str, Any]) -> tuple[Path, int]:
    """gateway.toml with one listener (`listener` replaces the harness's keys)."""
    port = free_port()
    table = config_table(workdir, shared_broker_port(), listen_port=port)
    table["listeners"] = [{"bind": f"127.0.0.1:{port}", "profile": "iso87-ascii", **listener}]
    table.update(sections)
    return write_toml(workdir / "gateway.toml", table), port


@contextmanager
def running_daemon(workdir: Path, listener: dict[str, Any],
                   preexec_fn: Callable[[], None] | None = None,
                   **sections: dict[str, Any]) -> Iterator[Daemon]:
    """`posgw run` until the block ends (SIGTERM, then its exit is awaited)."""
    config, port = daemon_config(workdir, listener, **sections)
    log_path = workdir / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([POSGW, "run", "-c", str(config), "--log-level", "info"],
                                   stdout=log, stderr=log, preexec_fn=preexec_fn)
    daemon = Daemon(process, port, log_path, f"sqlite:///{workdir / 'gateway.db'}")
    try:
        # Its own log line, not only an open port: a port picked free can be
        # taken by another test's process before this daemon binds it.
        listening = f"terminals on 127.0.0.1:{port}"
        wait_until(lambda: listening in daemon.log() and port_accepts(port), "the gateway",
                   START_DEADLINE_S, process)
        yield daemon
    finally:
        exit_code = stop(process)
    assert exit_code == 0, (f"posgw run ended with {exit_code} on SIGTERM (None: it hung); "
                            f"its log ends:\n{daemon.log()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM and the exit code; None when it had to be killed."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def stored_terminal_ids(daemon: Daemon) -> set[str]:
    """The terminal rows the stopped daemon left in its database."""
    store = Store(daemon.database)
    try:
        return {record.terminal_id for record in store.terminals()}
    finally:
        store.close()
