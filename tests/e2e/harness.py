"""Parts for end-to-end tests: a gateway config on loopback, terminals that
reconnect, and the ledger-vs-center check."""

from __future__ import annotations

import asyncio
import random
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import select

from posgw.center.command_key import PRIVATE_FILE as COMMAND_PRIVATE_FILE
from posgw.center.command_key import PUBLIC_FILE as COMMAND_PUBLIC_FILE
from posgw.center.command_key import generate_command_key, load_command_key, sign_command
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.models import ReceivedEvent
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.base import LinkClosed
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.mqtt import MqttConfig
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.config import GatewayConfig, parse_config
from posgw.gateway.daemon import Gateway
from posgw.gateway.profiles import load_profile
from posgw.gateway.security.keys import PUBLIC_KEY_FILE, generate_keys
from posgw.gateway.store import LedgerEntry, Store
from posgw.sandbox.ports import free_port
from posgw.simulator.cards import Card
from posgw.simulator.terminal import TerminalSimulator

DIGIT_RUNS = re.compile(rb"\d{12,19}")
HEX_RUNS = re.compile(rb"[0-9A-Fa-f]{24,}")

GATEWAY_ID = "gw-e2e"
BRANCH = "E2E"
TCP_PROFILE = load_profile("iso87-ascii")
CENTER_KEYS = "center-keys"


def topic_prefix(workdir: Path) -> str:
    """A prefix of this test's own: tests share the broker on 1883, and a center
    must neither see other tests' events nor split them on a shared subscription."""
    return f"e2e-{zlib.crc32(str(workdir).encode()):08x}/v1"


def center_keys(workdir: Path) -> Path:
    """The center's command key pair of this test (made on first use): the
    gateway obeys commands and believes confirmations signed with it."""
    folder = workdir / CENTER_KEYS
    if not (folder / COMMAND_PUBLIC_FILE).exists():
        generate_command_key(folder)
    return folder


def center_signed(workdir: Path, command: dict[str, Any]) -> dict[str, Any]:
    """`command` signed with this test's center key, as `posgw center cmd` signs it."""
    return sign_command(command, load_command_key(center_keys(workdir) / COMMAND_PRIVATE_FILE))


def standin(refunds_for: str = "", floor_limit: int = 10**9) -> dict[str, Any]:
    """`[upstream]` in stand-in; `refunds_for` (a terminal id) may refund up to the floor."""
    table: dict[str, Any] = {"mode": "standin", "floor_limit": floor_limit}
    if refunds_for:
        table["refund_limits"] = {refunds_for: floor_limit}
    return table


def config_table(workdir: Path, broker_port: int, *, listen_port: int = 0,
                 upstream: dict[str, Any] | None = None) -> dict[str, Any]:
    keys = workdir / "keys"
    if not (keys / PUBLIC_KEY_FILE).exists():
        generate_keys(keys)
    return {
        "gateway": {"branch_id": BRANCH, "gateway_id": GATEWAY_ID,
                    "database": f"sqlite:///{workdir / 'gateway.db'}"},
        # Its own client id too: tests running in parallel on one broker would
        # otherwise take each other's session over.
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "topic_prefix": topic_prefix(workdir),
                 "client_id": "gw-" + topic_prefix(workdir).split("/")[0]},
        "upstream": upstream or standin(),
        "keys": {"dir": str(keys),
                 "center_public_key": str(center_keys(workdir) / COMMAND_PUBLIC_FILE)},
        # Tests dial in with ids of their own choosing: the explicit opt-in, with
        # room for the busiest of them; and every test client dials from 127.0.0.1.
        "listeners": [{"bind": f"127.0.0.1:{listen_port}", "profile": "iso87-ascii",
                       "register_unknown": True, "max_terminals": 1000,
                       "max_connections_per_address": 64}],
    }


def gateway_config(workdir: Path, broker_port: int, **options: Any) -> GatewayConfig:
    return parse_config(config_table(workdir, broker_port, **options), "(e2e)")


def write_toml(path: Path, table: dict[str, Any]) -> Path:
    """A minimal TOML writer for the config tables above (strings, ints, booleans,
    tables, arrays, inline tables)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict):  # an inline table
            return "{" + ", ".join(f'"{k}" = {value(item)}' for k, item in v.items()) + "}"
        return f'"{v}"' if isinstance(v, str) else str(v)

    lines: list[str] = []
    for section, content in table.items():
        items = content if isinstance(content, list) else [content]
        for item in items:
            lines.append(f"[[{section}]]" if isinstance(content, list) else f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def center_toml(workdir: Path, broker_port: int, **center: str) -> Path:
    """A center.toml trusting this test's gateway, on its topic prefix, with
    this test's command key; `center` adds or replaces keys of `[center]`."""
    command_key = str(center_keys(workdir) / COMMAND_PRIVATE_FILE)
    return write_toml(workdir / "center.toml", {
        "center": {"database": f"sqlite:///{workdir / 'center.db'}",
                   "command_key": command_key, **center},
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "topic_prefix": topic_prefix(workdir)},
        "gateways": [{"id": GATEWAY_ID, "branch_id": BRANCH,
                      "public_key": str(workdir / "keys" / PUBLIC_KEY_FILE)}]})


def center_for(workdir: Path, broker_port: int, *,
               shared: bool = False) -> tuple[CenterStore, CenterIngest]:
    """A plain subscription, the center's default; `shared=True` subscribes
    through `$share/e2e/...` (never across a broker restart: mosquitto 2.0
    does not restore shared subscriptions from its persistence file)."""
    store = CenterStore(f"sqlite:///{workdir / 'center.db'}")
    verifier = SignatureVerifier(
        {GATEWAY_ID: load_public_key(workdir / "keys" / PUBLIC_KEY_FILE)},
        branches={GATEWAY_ID: BRANCH})
    mqtt = MqttConfig("127.0.0.1", broker_port, topic_prefix=topic_prefix(workdir),
                      client_id=f"e2e-center-{free_port()}",
                      share_group="e2e" if shared else None)
    return store, CenterIngest(store, verifier, mqtt, command_key=load_command_key(
        center_keys(workdir) / COMMAND_PRIVATE_FILE))


@asynccontextmanager
async def connected_gateway(config: GatewayConfig) -> AsyncIterator[Gateway]:
    """The daemon in this process, ready and connected to its broker (so it
    hears commands); stopped on the way out."""
    gateway, stop = Gateway(config), asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    try:
        await gateway.ready.wait()
        assert gateway.forwarder is not None
        await gateway.forwarder.connected.wait()
        yield gateway
    finally:
        stop.set()
        await run


@asynccontextmanager
async def gateway_and_center(config: GatewayConfig, workdir: Path, broker_port: int
                             ) -> AsyncIterator[tuple[Gateway, CenterStore]]:
    """The daemon in this process and a center on `broker_port`, both up
    (the daemon ready, the center subscribed); stopped on the way out."""
    center, ingest = center_for(workdir, broker_port)
    gateway, stop = Gateway(config), asyncio.Event()
    center_task = asyncio.create_task(ingest.run())
    run = asyncio.create_task(gateway.run(stop))
    try:
        await gateway.ready.wait()
        await ingest.subscribed.wait()
        yield gateway, center
    finally:
        stop.set()
        await run
        center_task.cancel()


@dataclass(slots=True)
class TerminalLog:
    """What the terminals were told: (terminal, STAN) -> response code."""

    approved: set[tuple[str, str]] = field(default_factory=set)
    answered: int = 0
    reconnects: int = 0


async def reconnecting_terminal(port: int, terminal_id: str, cards: list[Card],
                                until: float, log: TerminalLog, *, rate: float,
                                stop: asyncio.Event | None = None) -> None:
    """Purchases at `rate`/s until `until` (monotonic) or `stop` is set;
    redials when the line drops."""
    rng = random.Random(terminal_id)

    def going() -> bool:
        return SYSTEM_CLOCK.monotonic() < until and not (stop is not None and stop.is_set())

    while going():
        try:
            transport = await connect_tcp("127.0.0.1", port, timeout=1)
        except LinkClosed:
            await asyncio.sleep(0.1)  # the gateway is restarting: redial shortly
            log.reconnects += 1
            continue
        sim = TerminalSimulator(TCP_PROFILE, transport, terminal_id, "M00000000000001",
                                cards, response_timeout_s=3.0, max_repeats=0)
        async with sim:
            while going():
                card = cards[rng.randrange(len(cards))]
                exchange = await sim.purchase(card.pan, rng.randrange(1_00, 100_00))
                if exchange.response_code is not None:
                    log.answered += 1
                if exchange.approved:
                    log.approved.add((terminal_id, exchange.stan))
                if exchange.note in ("link closed", "not delivered"):
                    break
                await asyncio.sleep(1 / rate)  # pacing, not synchronisation


def ledger_rows(database: str) -> list[LedgerEntry]:
    with Store(database) as store, store.session() as session:
        return list(session.scalars(select(LedgerEntry)))


def center_event_ids(center: CenterStore) -> list[str]:
    with center.session() as session:
        return list(session.scalars(select(ReceivedEvent.event_id)
                                    .where(ReceivedEvent.gateway_id == GATEWAY_ID)))


async def until_center_has(center: CenterStore, event_ids: set[str],
                           timeout_s: float = 60.0) -> list[str]:
    """Poll (with a deadline) until the center holds every id; returns what it holds."""
    deadline = SYSTEM_CLOCK.monotonic() + timeout_s
    while True:
        held = await asyncio.to_thread(center_event_ids, center)
        if event_ids <= set(held) or SYSTEM_CLOCK.monotonic() > deadline:
            return held
        await asyncio.sleep(0.1)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """For sync tests driving a daemon process: poll with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a port, a log file or a CLI, with a deadline


def leaked(data: bytes, pans: set[str]) -> set[str]:
    """PANs found in `data` as digits (text, BCD shown as hex) or as hex of ASCII.
    Track 2 and track 1 begin with the PAN, so this finds track data too."""
    found = {run.decode() for run in DIGIT_RUNS.findall(data)}
    hits = {pan for pan in pans if any(pan in run for run in found)}
    for run in HEX_RUNS.findall(data):
        text = run.decode().upper()
        hits |= {pan for pan in pans if pan.encode().hex().upper() in text}
    return hits
