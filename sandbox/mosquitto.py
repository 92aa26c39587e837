"""A private MQTT broker on a loopback port: mosquitto when installed, else the embedded one.

One launcher for the demo, the benches and the tests. `PrivateBroker` is a
broker process of our own, restartable on its port, optionally with
persistence (mosquitto only: the embedded broker keeps sessions in memory).
`demo_broker` is what `posgw demo` runs: that process when mosquitto is
installed, else the embedded broker inside the demo's own event loop.
"""

from __future__ import annotations

import asyncio
import getpass
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from posgw.sandbox.ports import LOOPBACK, free_port, port_accepts
from posgw.sandbox.processes import (
    SetupError,
    cpu_seconds,
    kill_process,
    stop_process,
    wait_until,
)

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
START_DEADLINE_S = 10.0
STOP_DEADLINE_S = 10.0
#: mosquitto's default queue per client is 1000 QoS 1 messages: past it a
#: slow subscriber (the center) silently loses what the gateway saw acked.
MAX_QUEUED = 1_000_000
LOG_TAIL_CHARS = 2000  # of the broker's log, in the error when it does not start

BrokerKind = Literal["mosquitto", "embedded"]


class BrokerUnavailable(SetupError):
    """What was asked of the broker needs mosquitto, and it is not installed."""


def mosquitto_path() -> str | None:
    """The installed mosquitto binary, or None."""
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def mosquitto_config(port: int, workdir: Path, *, persistent: bool, max_queued: int,
                     listener_options: str = "", access: str = "allow_anonymous true\n") -> str:
    """mosquitto.conf for one listener on loopback `port`.

    `listener_options`: lines that belong to the listener (TLS files, ...);
    `access`: who may connect (anonymous clients by default).
    """
    # persistent: sessions and queued QoS 1 messages are saved on SIGTERM
    # (as `mosquitto.db` in `workdir`) and loaded again on start.
    persistence = (f"persistence true\npersistence_location {workdir}/\n"
                   if persistent else "persistence false\n")
    # Started as root, mosquitto drops to the user "mosquitto", which can
    # neither write its database into our private folder (each restart then
    # silently forgets every session) nor read a key there: stay our user.
    return (f"listener {port} {LOOPBACK}\n{listener_options}"
            f"{access}{persistence}"
            f"user {getpass.getuser()}\nmax_queued_messages {max_queued}\n")


class PrivateBroker:
    """A broker process on 127.0.0.1:`port`, restartable on that port.

    `binary`: mosquitto's path, or None for the embedded broker run as its
    own process (`python -m posgw.sandbox.mqtt_broker`), which has neither
    persistence nor TLS: asking for them raises BrokerUnavailable. The
    broker's output is appended to `workdir`/mosquitto.log across restarts.
    `config`: the whole mosquitto.conf for the port chosen, instead of the
    one made from the other options (a deployment's own, say).
    """

    def __init__(self, workdir: Path, *, binary: str | None, persistent: bool = False,
                 max_queued: int = MAX_QUEUED, listener_options: str = "",
                 config: Callable[[int], str] | None = None,
                 start_deadline_s: float = START_DEADLINE_S,
                 stop_deadline_s: float = STOP_DEADLINE_S) -> None:
        self.port = free_port()
        self.kind: BrokerKind = "embedded" if binary is None else "mosquitto"
        self.log = workdir / "mosquitto.log"
        self.persistence_file = workdir / "mosquitto.db" if persistent else None
        self.start_deadline_s, self.stop_deadline_s = start_deadline_s, stop_deadline_s
        self.process: subprocess.Popen[bytes] | None = None
        self.cpu_s = 0.0  # of the runs stopped so far
        if binary is None:
            if persistent:
                raise BrokerUnavailable("needs mosquitto: the embedded broker keeps sessions in "
                                        "memory only, they would not survive a restart")
            if listener_options or config is not None:
                raise BrokerUnavailable("needs mosquitto: the embedded broker takes no listener "
                                        "options (TLS, ...)")
            self.command = [sys.executable, "-m", "posgw.sandbox.mqtt_broker",
                            "--port", str(self.port), "--max-queued", str(max_queued)]
            return
        config_file = workdir / "mosquitto.conf"
        config_file.write_text(config(self.port) if config is not None else mosquitto_config(
            self.port, workdir, persistent=persistent, max_queued=max_queued,
            listener_options=listener_options))
        self.command = [binary, "-c", str(config_file)]

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it and return once its port accepts; SetupError (with its log) if not."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=out)
        try:
            wait_until(lambda: port_accepts(self.port), f"{self.kind} on port {self.port}",
                       self.start_deadline_s, self.process)
        except SetupError as exc:
            self.kill()
            raise SetupError(f"{exc}; its log: {self.log_tail()}") from None

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        process = self._take_process()
        if process is None:
            return
        if not stop_process(process, self.stop_deadline_s):
            raise SetupError(f"{self.kind} did not stop on SIGTERM within "
                             f"{self.stop_deadline_s:g} s; killed")
        if self.persistence_file is not None and not self.persistence_file.exists():
            raise SetupError(f"mosquitto saved no {self.persistence_file}: its sessions "
                             "would not survive the restart")

    def kill(self) -> None:
        """SIGKILL: nothing is saved, what was in memory only is gone."""
        process = self._take_process()
        if process is not None:
            kill_process(process)

    def cpu_so_far(self) -> float:
        """CPU seconds over every run so far (Linux; runs not measurable count 0)."""
        live = cpu_seconds(self.process.pid) if self.running and self.process else None
        return self.cpu_s + (live or 0.0)

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-LOG_TAIL_CHARS:].strip() or "(empty)"

    def _take_process(self) -> subprocess.Popen[bytes] | None:
        """The process, forgotten here, with its CPU time counted while it still lives."""
        process, self.process = self.process, None
        if process is not None:
            self.cpu_s += cpu_seconds(process.pid) or 0.0
        return process


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    """A client of the demo's broker: its user name and ACL block
    (center/broker_access.py, as `posgw center enroll` writes them)."""

    username: str
    acl: str


@dataclass(frozen=True, slots=True)
class RunningBroker:
    kind: BrokerKind
    host: str
    port: int
    #: user name -> password; empty: the broker admits anonymous clients.
    passwords: Mapping[str, str] = field(default_factory=dict)


@asynccontextmanager
async def demo_broker(workdir: Path, choice: str = "auto",
                      accounts: Sequence[BrokerAccount] = ()) -> AsyncIterator[RunningBroker]:
    """`choice`: "auto" (mosquitto when installed), "mosquitto" or "embedded".

    With `accounts`, mosquitto runs as the deployment's does: no anonymous
    client, each client's id its user name, a password and an ACL block per
    account (written here, passwords random). The embedded broker has no
    access control: it stays anonymous, on loopback only.
    """
    binary = mosquitto_path()
    if choice == "mosquitto" and binary is None:
        raise BrokerUnavailable("mosquitto is not installed (try --broker embedded)")
    if binary is not None and choice != "embedded":
        passwords = _provision(workdir, accounts)
        access = (f"allow_anonymous false\npassword_file {workdir / 'passwd'}\n"
                  f"acl_file {workdir / 'acl'}\n" if accounts else "allow_anonymous true\n")
        broker = PrivateBroker(workdir, binary=binary, config=lambda port: mosquitto_config(
            port, workdir, persistent=False, max_queued=MAX_QUEUED, access=access,
            listener_options="use_username_as_clientid true\n" if accounts else ""))
        await asyncio.to_thread(broker.start)
        try:
            yield RunningBroker(broker.kind, LOOPBACK, broker.port, passwords)
        finally:
            await asyncio.to_thread(broker.stop)
        return
    from posgw.sandbox.mqtt_broker import EmbeddedBroker

    async with EmbeddedBroker(LOOPBACK, 0) as embedded:
        yield RunningBroker("embedded", LOOPBACK, embedded.port)


def _provision(workdir: Path, accounts: Sequence[BrokerAccount]) -> dict[str, str]:
    """Writes `workdir`/passwd and acl for `accounts`; their passwords."""
    from posgw.center.broker_access import new_password, password_line

    passwords = {account.username: new_password() for account in accounts}
    if accounts:
        (workdir / "passwd").write_text("".join(
            password_line(user, password) + "\n" for user, password in passwords.items()))
        (workdir / "acl").write_text("\n".join(account.acl for account in accounts))
    return passwords
