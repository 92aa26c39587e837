"""The soak's moving parts.

Own processes, so they can be stopped and killed for real: a private
mosquitto (restartable on the same port, with persistence), the gateway
(`posgw run -c gateway.toml`, SIGKILLed and restarted on the same database),
one or more centers (`posgw center -c center-N.toml`: each its own MQTT
client id, the same share group and database, each SIGKILLed and restarted
on its own) and, with `postgres`, a private PostgreSQL server for the
centers' database (sandbox/postgres.py; crashed and started again on its
port, never the machine's shared server). In the bench process: the
acquirer simulator and the terminals' ends of their lines — a pty pair for
the serial terminal, an emulated USB device served to the gateway process
through its loopback relay (`[testing] usb_backend`), and loopback TCP.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from posgw.center.command_key import PRIVATE_FILE as COMMAND_PRIVATE_FILE
from posgw.center.command_key import PUBLIC_FILE as COMMAND_PUBLIC_FILE
from posgw.center.command_key import generate_command_key
from posgw.drivers.serial_link import SerialSettings
from posgw.gateway.profiles import load_profile
from posgw.gateway.security.keys import PUBLIC_KEY_FILE, generate_keys
from posgw.sandbox.demo.cards import card_pool
from posgw.sandbox.mosquitto import PrivateBroker, mosquitto_path
from posgw.sandbox.ports import free_port, port_accepts
from posgw.sandbox.postgres import PrivatePostgres
from posgw.sandbox.processes import (
    SetupError,
    cpu_seconds,
    kill_process,
    stop_process,
    wait_until,
)
from posgw.simulator.acquirer import AcquirerServer
from posgw.simulator.acquirer_host import AcquirerHost
from posgw.simulator.cards import Card, demo_cards
from posgw.simulator.pty_pair import PtyPair, pty_supported
from posgw.simulator.usb_emulation import EmulatedUsbDevice, UsbRelayServer

log = logging.getLogger("bench.soak")

BRANCH, GATEWAY_ID, MERCHANT = "SOAK01", "gw-soak-1", "M00000000000001"
TCP_PROFILE, SERIAL_PROFILE, USB_PROFILE = "iso87-ascii", "ecr-stx-lrc", "unionpay-tpdu"
UPSTREAM_PROFILE = "iso87-binary"
SERIAL_TERMINAL, USB_TERMINAL, USB_SERIAL_NUMBER = "S0000001", "U0000001", "SOAK0001"
#: Enough cards that the rapid-repeat and duplicate-charge rules rarely fire
#: by chance at 200 tx/s; they still fire when the traffic means them to.
POOL_SIZE = 20_000
#: A big outbox and mosquitto queue: the soak judges loss, so nothing may be
#: dropped by a bound that a real deployment would size for its own traffic.
OUTBOX_CAP = 10_000_000
MAX_QUEUED = 10_000_000
UPSTREAM_TIMEOUT_S = 5
START_DEADLINE_S = 60.0
#: A gateway start first replays the last 24 h of ledger into its dedupe and
#: risk windows: about 0.1 ms a row here, so 25 s after 30 minutes at 200 tx/s.
GATEWAY_START_DEADLINE_S = 600.0
STOP_DEADLINE_S = 60.0
CENTER_STOPPED = re.compile(r"stopped; ingested (\d+), duplicates (\d+), quarantined (\d+)")
CENTER_SUBSCRIBED = "center subscribed"
#: Between a center's failed start and the next, as a supervisor waits
#: (systemd's RestartSec); START_DEADLINE_S bounds all the attempts.
RESTART_DELAY_S = 1.0
#: The share group several soak centers split the stream in when none is named.
DEFAULT_SHARE_GROUP = "center"


def find_mosquitto() -> str:
    found = mosquitto_path()
    if found is None:
        raise SetupError("the soak needs mosquitto (its persistence is what a broker restart "
                         "is judged against): install it, e.g. `apt-get install mosquitto`")
    return found


def soak_broker(workdir: Path) -> PrivateBroker:
    """mosquitto on a free loopback port, restartable on it, with persistence.

    Sessions (the center's subscription and the QoS 1 messages queued for
    it) are saved on SIGTERM and loaded again on start.
    """
    return PrivateBroker(workdir, binary=find_mosquitto(), persistent=True,
                         max_queued=MAX_QUEUED, start_deadline_s=START_DEADLINE_S,
                         stop_deadline_s=STOP_DEADLINE_S)


class ChildProcess:
    """One `posgw` sub-command as a child process, its output appended to `log`."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.argv, self.log = argv, log
        self.process: subprocess.Popen[bytes] | None = None
        self.cpu_s = 0.0  # over every run so far, counted when each one ends

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=out,
                                            env=child_environment())

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would: nothing runs after it."""
        assert self.process is not None
        self.cpu_s += cpu_seconds(self.process.pid) or 0.0
        kill_process(self.process)

    def terminate(self) -> int:
        """SIGTERM and wait; the exit code (-9 if it had to be killed)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.cpu_s += cpu_seconds(self.process.pid) or 0.0  # short of its last moments
            stop_process(self.process, STOP_DEADLINE_S)
        return int(self.process.returncode)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass(frozen=True, slots=True)
class CenterCounts:
    """What `posgw center` reports when it stops: this run's deliveries."""

    ingested: int
    duplicates: int  # redeliveries it recognised by event_id and did not store again
    quarantined: int


def center_counts(centers: list[ChildProcess]) -> CenterCounts | None:
    """Summed over every center run that stopped cleanly (a SIGKILLed run
    reports nothing, so these are lower bounds); None if none reported."""
    found = [tuple(int(n) for n in line) for center in centers
             for line in CENTER_STOPPED.findall(center.log_text())]
    if not found:
        return None
    return CenterCounts(*(sum(column) for column in zip(*found, strict=True)))


@dataclass(slots=True)
class SoakStack:
    workdir: Path
    broker: PrivateBroker
    gateway: ChildProcess
    centers: list[ChildProcess]
    postgres: PrivatePostgres | None  # the centers' database server, when not SQLite
    listen_port: int
    database: str  # the gateway's
    center_database: str
    cards: list[Card]
    pool: list[Card]
    pty: PtyPair
    usb_device: EmulatedUsbDevice

    def start_center(self, index: int) -> float:
        """Start center `index` and wait for its subscription (the broker queues
        for a persistent session only once it has subscribed); seconds it took.

        A center that exits before it subscribes (`posgw center` refuses to
        start while its database is unreachable, e.g. PostgreSQL crashed) is
        started again after RESTART_DELAY_S, as systemd's `Restart=always`
        would, until START_DEADLINE_S."""
        began = time.monotonic()
        center, name = self.centers[index], f"center {index + 1}"
        while not start_subscribed(center, name, START_DEADLINE_S - (time.monotonic() - began)):
            log.warning("%s exited before subscribing; starting it again", name)
            time.sleep(RESTART_DELAY_S)  # a supervisor's restart delay, not synchronisation
        return time.monotonic() - began

    def start_centers(self) -> None:
        for index in range(len(self.centers)):  # one by one: each creates the schema
            self.start_center(index)

    def start_gateway(self) -> float:
        """Start the gateway; seconds until its listener accepts."""
        began = time.monotonic()
        self.gateway.start()
        wait_until(lambda: port_accepts(self.listen_port), "the gateway",
                   GATEWAY_START_DEADLINE_S, self.gateway.process)
        return time.monotonic() - began


def start_subscribed(center: ChildProcess, name: str, deadline_s: float) -> bool:
    """Start `center`; True once it has subscribed, False if it exited first.
    SetupError when it neither subscribes nor exits within `deadline_s`, or
    has no time left to try."""
    if deadline_s <= 0:
        raise SetupError(f"{name}: not subscribed within {START_DEADLINE_S:g} s of starts")
    before = center.log_text().count(CENTER_SUBSCRIBED)  # its log spans restarts
    center.start()
    try:
        wait_until(lambda: center.log_text().count(CENTER_SUBSCRIBED) > before, name,
                   deadline_s, center.process)
    except SetupError:
        if center.running:
            raise
        return False
    return True


#: `[forward] confirm_timeout_s` of the soak's gateway (see gateway_config).
CONFIRM_TIMEOUT_S = 10


def posgw_command() -> str:
    return shutil.which("posgw") or str(Path(sys.executable).with_name("posgw"))


@asynccontextmanager
async def soak_stack(workdir: Path, seed: int, share_group: str, *, centers: int = 1,
                     postgres: bool = False) -> AsyncIterator[SoakStack]:
    """Everything set up, nothing but the broker (and PostgreSQL) started;
    children stopped on exit.

    `share_group`: the centers' `[mqtt] share_group`; "" subscribes plainly
    (several centers need one: each would store everything otherwise).
    `postgres`: the centers' database on a private PostgreSQL server
    (PostgresUnavailable without its binaries), else SQLite.
    mosquitto (2.0.11 here) does not restore a shared subscription from its
    persistence file: after a restart, until the center subscribes again,
    what the gateway publishes matches no subscriber, and the broker
    acknowledges it (reason code 16, "no matching subscribers") and drops it.
    A plain subscription is restored, so the broker queues for the center
    from its first second up.
    """
    if not pty_supported():
        raise SetupError("the soak's serial terminal needs a pseudo-terminal (POSIX)")
    broker = soak_broker(workdir)
    pool = card_pool(seed, POOL_SIZE)
    cards = demo_cards() + pool  # one set of Card objects: the issuer's and the terminals'
    upstream = load_profile(UPSTREAM_PROFILE)
    async with AsyncExitStack() as stack:
        database_server = None
        if postgres:  # first: it stops after the centers that use it
            database_server = PrivatePostgres(workdir / "postgres.log")
            stack.callback(database_server.remove)
            database_server.start()
            stack.callback(database_server.stop)
        broker.start()
        stack.callback(broker.stop)
        acquirer = await stack.enter_async_context(
            AcquirerServer(upstream, AcquirerHost(upstream.iso8583, cards)))
        settings = SerialSettings.from_spec(load_profile(SERIAL_PROFILE).transport)
        pty = await stack.enter_async_context(PtyPair(settings=settings))
        match = load_profile(USB_PROFILE).transport.usb[0]
        usb_device = EmulatedUsbDevice(match.vid, match.pid, USB_SERIAL_NUMBER)
        relay = await stack.enter_async_context(UsbRelayServer(usb_device))
        generate_keys(workdir / "keys")
        generate_command_key(workdir / "center-keys")  # signs the center's confirmations
        listen_port = free_port()
        database = f"sqlite:///{workdir / 'gateway.db'}"
        center_database = (database_server.url if database_server is not None
                           else f"sqlite:///{workdir / 'center.db'}")
        gateway_toml = workdir / "gateway.toml"
        gateway_toml.write_text(gateway_config(
            workdir, database, broker.port, acquirer.port, listen_port, pty.port, relay.option))
        posgw = posgw_command()
        gateway = ChildProcess([posgw, "run", "-c", str(gateway_toml)], workdir / "gateway.log")
        center_processes = []
        for number in range(1, centers + 1):
            center_toml = workdir / f"center-{number}.toml"
            center_toml.write_text(center_config(workdir, center_database, broker.port,
                                                 share_group, f"posgw-soak-center-{number}"))
            center = ChildProcess([posgw, "center", "-c", str(center_toml)],
                                  workdir / f"center-{number}.log")
            stack.callback(center.terminate)
            center_processes.append(center)
        stack.callback(gateway.terminate)
        yield SoakStack(workdir, broker, gateway, center_processes, database_server,
                        listen_port, database, center_database, cards, pool, pty, usb_device)


def gateway_config(workdir: Path, database: str, broker_port: int, acquirer_port: int,
                   listen_port: int, serial_port: str, usb_relay: str) -> str:
    # The soak drives each terminal far faster than a counter does: the
    # per-terminal velocity and card-count rules would freeze nearly every
    # sale after the first minutes, so they are off; the per-card rules stay.
    return f"""
[gateway]
branch_id = "{BRANCH}"
gateway_id = "{GATEWAY_ID}"
database = "{database}"

[mqtt]
host = "127.0.0.1"
port = {broker_port}

[store]
outbox_cap = {OUTBOX_CAP}

[keys]
dir = "{workdir / 'keys'}"
center_public_key = "{workdir / 'center-keys' / COMMAND_PUBLIC_FILE}"

[forward]
# An event is done when the center confirms it; one the center has not
# confirmed after this long is sent again. Shorter than the default (60 s)
# so a short soak's broker SIGKILLs are repaired within its drain deadline.
confirm_timeout_s = {CONFIRM_TIMEOUT_S}

[upstream]
mode = "iso8583"
host = "127.0.0.1:{acquirer_port}"
profile = "{UPSTREAM_PROFILE}"
timeout_s = {UPSTREAM_TIMEOUT_S}

[testing]
usb_backend = "{usb_relay}"

[[listeners]]
bind = "127.0.0.1:{listen_port}"
profile = "{TCP_PROFILE}"
# The bench's terminals are numbered on the command line: the explicit opt-in,
# and room for all of them, every one dialling from 127.0.0.1.
register_unknown = true
max_terminals = 2000
max_connections = 2000
max_connections_per_address = 2000

[[terminals]]
id = "{SERIAL_TERMINAL}"
driver = "serial"
port = "{serial_port}"
profile = "{SERIAL_PROFILE}"
merchant_id = "{MERCHANT}"

[[terminals]]
id = "{USB_TERMINAL}"
driver = "usb"
usb = "{_usb_id()}"
serial_number = "{USB_SERIAL_NUMBER}"
profile = "{USB_PROFILE}"
merchant_id = "{MERCHANT}"

[risk.rules.terminal_velocity]
enabled = false

[risk.rules.many_cards]
enabled = false
"""


def _usb_id() -> str:
    match = load_profile(USB_PROFILE).transport.usb[0]
    return f"{match.vid:04x}:{match.pid:04x}"


def center_config(workdir: Path, database: str, broker_port: int, share_group: str,
                  client_id: str) -> str:
    # A stable client id per center: the broker keeps each center's session,
    # and what is queued for it, across its reconnects, its SIGKILLs and the
    # broker's restarts.
    return f"""
[center]
database = "{database}"
command_key = "{workdir / 'center-keys' / COMMAND_PRIVATE_FILE}"

[mqtt]
host = "127.0.0.1"
port = {broker_port}
client_id = "{client_id}"
share_group = "{share_group}"

[[gateways]]
id = "{GATEWAY_ID}"
branch_id = "{BRANCH}"
public_key = "{workdir / 'keys' / PUBLIC_KEY_FILE}"
"""


def child_environment() -> dict[str, str]:
    """Ours without POSGW_* variables: they would override the soak's own files."""
    return {k: v for k, v in os.environ.items() if not k.startswith("POSGW_")}
