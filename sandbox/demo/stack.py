"""Everything `posgw demo` starts, on one machine, in one process (but the
broker): the acquirer simulator, the gateway daemon, the reference center,
a serial terminal on a pty pair, a USB terminal on an emulated device and
IP terminals on loopback TCP."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posgw.center.broker_access import center_acl, gateway_acl
from posgw.center.command_key import PRIVATE_FILE as COMMAND_PRIVATE_FILE
from posgw.center.command_key import PUBLIC_FILE as COMMAND_PUBLIC_FILE
from posgw.center.command_key import generate_command_key, load_command_key
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.base import Transport
from posgw.drivers.mqtt import MqttConfig
from posgw.drivers.serial_link import SerialSettings
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.config import GatewayConfig, parse_config
from posgw.gateway.daemon import Gateway
from posgw.gateway.profiles import load_profile
from posgw.gateway.security.keys import PUBLIC_KEY_FILE, generate_keys
from posgw.protocols.contract import DEFAULT_TOPIC_PREFIX
from posgw.sandbox.demo.cards import card_pool
from posgw.sandbox.demo.traffic import Tally, TerminalRun
from posgw.sandbox.mosquitto import BrokerAccount, RunningBroker
from posgw.simulator.acquirer import AcquirerServer
from posgw.simulator.acquirer_host import AcquirerHost
from posgw.simulator.cards import Card, demo_cards
from posgw.simulator.pty_pair import PtyPair, pty_supported
from posgw.simulator.terminal import TerminalSimulator
from posgw.simulator.usb_emulation import EmulatedUsbDevice

BRANCH, GATEWAY_ID = "DEMO01", "gw-demo-1"
MERCHANT = "M00000000000001"  # the first IP terminal's; each terminal has its own
TCP_PROFILE, SERIAL_PROFILE, USB_PROFILE = "iso87-ascii", "ecr-stx-lrc", "unionpay-tpdu"
UPSTREAM_PROFILE = "iso87-binary"
CENTER_USER = "posgw-demo-center"  # its broker user name, and so its client id
SERIAL_TERMINAL, USB_TERMINAL, USB_SERIAL_NUMBER = "T0000901", "T0000902", "DEMO0001"
#: Short, so the lost-response sample reverses within the demo's seconds.
TERMINAL_RESPONSE_TIMEOUT_S = 1.5
UPSTREAM_TIMEOUT_S = 2


@dataclass(slots=True)
class DemoStack:
    workdir: Path
    config: GatewayConfig
    gateway: Gateway
    center_store: CenterStore
    ingest: CenterIngest
    cards: list[Card]
    pool: list[Card]
    usb_device: EmulatedUsbDevice
    pty: PtyPair | None
    tally: Tally


def tcp_terminal_id(index: int) -> str:
    return f"T{index + 1:07d}"


def merchant_of(terminal_id: str) -> str:
    """Each demo terminal is its own merchant's (field 42: 15 characters), so
    the settlement step has merchants to tell apart; T0000001's is MERCHANT."""
    return "M" + terminal_id[1:].rjust(14, "0")


def gateway_config(workdir: Path, broker: RunningBroker, acquirer_port: int,
                   serial_port: str | None, tcp_terminals: int = 3) -> GatewayConfig:
    terminals: list[dict[str, Any]] = [
        {"id": USB_TERMINAL, "driver": "usb", "usb": "0b00:0054", "profile": USB_PROFILE,
         "serial_number": USB_SERIAL_NUMBER, "merchant_id": merchant_of(USB_TERMINAL)}]
    if serial_port is not None:
        terminals.append({"id": SERIAL_TERMINAL, "driver": "serial", "port": serial_port,
                          "profile": SERIAL_PROFILE, "merchant_id": merchant_of(SERIAL_TERMINAL)})
    return parse_config({
        "gateway": {"branch_id": BRANCH, "gateway_id": GATEWAY_ID,
                    "database": f"sqlite:///{workdir / 'gateway.db'}"},
        "mqtt": {"host": broker.host, "port": broker.port,
                 **_credentials(broker, GATEWAY_ID)},
        "upstream": {"mode": "iso8583", "host": f"127.0.0.1:{acquirer_port}",
                     "profile": UPSTREAM_PROFILE, "timeout_s": UPSTREAM_TIMEOUT_S},
        # The center's key: the gateway obeys its commands and believes its
        # confirmations (an event is done only once the center stored it).
        "keys": {"dir": str(workdir / "keys"),
                 "center_public_key": str(workdir / "center-keys" / COMMAND_PUBLIC_FILE)},
        # The demo's IP terminals by name, as a deployment lists its own; they all
        # dial from 127.0.0.1, so the per-address cap is the listener's cap.
        "listeners": [{"bind": "127.0.0.1:0", "profile": TCP_PROFILE,
                       "allow": [tcp_terminal_id(i) for i in range(max(tcp_terminals, 1))],
                       "max_connections": max(64, 2 * tcp_terminals),
                       "max_connections_per_address": max(64, 2 * tcp_terminals)}],
        "terminals": terminals,
    }, "(demo)")


def broker_accounts() -> list[BrokerAccount]:
    """The demo's broker clients, with the ACL `posgw center enroll` gives them."""
    prefix = DEFAULT_TOPIC_PREFIX
    return [BrokerAccount(CENTER_USER, center_acl(prefix, CENTER_USER)),
            BrokerAccount(GATEWAY_ID, gateway_acl(prefix, BRANCH, GATEWAY_ID))]


def _credentials(broker: RunningBroker, username: str) -> dict[str, str]:
    """[mqtt] username and password when the broker checks them."""
    if username not in broker.passwords:
        return {}
    return {"username": username, "password": broker.passwords[username]}


@asynccontextmanager
async def demo_stack(workdir: Path, broker: RunningBroker, seed: int,
                     tcp_terminals: int = 3) -> AsyncIterator[DemoStack]:
    pool = card_pool(seed)
    cards = demo_cards() + pool  # one set of Card objects: the issuer's and the terminals'
    upstream = load_profile(UPSTREAM_PROFILE)
    async with AsyncExitStack() as stack:
        acquirer = await stack.enter_async_context(
            AcquirerServer(upstream, AcquirerHost(upstream.iso8583, cards)))
        pty = await _pty(stack)
        generate_command_key(workdir / "center-keys")
        config = gateway_config(workdir, broker, acquirer.port, pty.port if pty else None,
                                tcp_terminals)
        generate_keys(config.keys_dir)
        match = load_profile(USB_PROFILE).transport.usb[0]
        usb_device = EmulatedUsbDevice(match.vid, match.pid, USB_SERIAL_NUMBER)
        gateway = Gateway(config, usb_backend=usb_device.backend)
        center_store = CenterStore(f"sqlite:///{workdir / 'center.db'}")
        stack.callback(center_store.close)
        verifier = SignatureVerifier(
            {GATEWAY_ID: load_public_key(Path(config.keys_dir) / PUBLIC_KEY_FILE)},
            branches={GATEWAY_ID: BRANCH})
        ingest = CenterIngest(
            center_store, verifier,
            MqttConfig(broker.host, broker.port, client_id=CENTER_USER,
                       username=_credentials(broker, CENTER_USER).get("username"),
                       password=_credentials(broker, CENTER_USER).get("password")),
            command_key=load_command_key(workdir / "center-keys" / COMMAND_PRIVATE_FILE))
        yield DemoStack(workdir, config, gateway, center_store, ingest, cards, pool,
                        usb_device, pty, Tally())


async def _pty(stack: AsyncExitStack) -> PtyPair | None:
    if not pty_supported():
        return None
    settings = SerialSettings.from_spec(load_profile(SERIAL_PROFILE).transport)
    return await stack.enter_async_context(PtyPair(settings=settings))


async def terminal_lines(demo: DemoStack, tcp_terminals: int) -> list[tuple[str, Transport, str]]:
    """(terminal id, the terminal's end of its line, profile) for every demo terminal."""
    lines: list[tuple[str, Transport, str]] = [
        (USB_TERMINAL, demo.usb_device.device_transport(), USB_PROFILE)]
    if demo.pty is not None:
        lines.append((SERIAL_TERMINAL, demo.pty.master_transport(), SERIAL_PROFILE))
    port = demo.gateway.listener_ports[0]
    for index in range(tcp_terminals):
        lines.append((tcp_terminal_id(index), await connect_tcp("127.0.0.1", port), TCP_PROFILE))
    return lines


def terminal_run(demo: DemoStack, terminal_id: str, transport: Transport, profile: str,
                 seed: int) -> TerminalRun:
    simulator = TerminalSimulator(load_profile(profile), transport, terminal_id,
                                  merchant_of(terminal_id), demo.cards,
                                  response_timeout_s=TERMINAL_RESPONSE_TIMEOUT_S)
    return TerminalRun(simulator, demo.pool, random.Random(f"{seed}-{terminal_id}"),
                       demo.tally)


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
