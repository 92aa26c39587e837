"""Held sockets and a slowloris against a listener with the shipped bounds.

The phase `bench/hostile.py` runs after its floods, on a second listener of
the same daemon configured as deploy/gateway.example.toml ships it (an
allow list, 64 connections, 8 per source address, idle 300 s, inter-byte
5 s, message 15 s). Honest terminals (on that allow list, each dialling
from an address of its own, 127.0.1.x) buy all through each step; their
latency (p50/p99) and how many purchases were answered are printed for each
step beside the no-attack baseline:

1. baseline: the terminals alone;
2. held sockets: twice the connection cap, opened from 16 loopback
   addresses (127.0.0.2...) and re-opened whenever the gateway closes one,
   while connected terminals buy and a newcomer dials in every second;
3. slowloris: 48 connections, each a length header and then a byte a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from posgw.drivers.session_limits import SessionLimits
from posgw.drivers.tcp_link import TcpTransport
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import Exchange, TerminalSimulator
from tests.e2e.harness import TCP_PROFILE

SESSION_TERMINALS = [f"T{n:07d}" for n in range(101, 105)]
NEWCOMER = "T0000199"
#: Each terminal dials from an address of its own, as on a branch LAN.
TERMINAL_ADDRESS = {terminal_id: f"127.0.1.{n}"
                    for n, terminal_id in enumerate([*SESSION_TERMINALS, NEWCOMER], start=1)}
MERCHANT = "M00000000000001"
STEP_S = 15.0
PACE_S = 0.1  # each connected terminal buys ten times a second
ANSWER_TIMEOUT_S = 10.0
ATTACK_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 18)]
SLOWLORIS_CONNECTIONS = 48
LIMITS = SessionLimits()  # the shipped defaults, as the example config spells them out


def listener_toml(port: int) -> str:
    """The second listener: the example's shape, the example's bounds."""
    return f"""
[[listeners]]
bind = "127.0.0.1:{port}"
profile = "{TCP_PROFILE.name}"
allow = {[*SESSION_TERMINALS, NEWCOMER]!r}
max_connections = {LIMITS.max_connections}
max_connections_per_address = {LIMITS.max_per_address}
idle_timeout_s = {LIMITS.idle_timeout_s:.0f}
inter_byte_timeout_s = {LIMITS.inter_byte_timeout_s:.0f}
message_timeout_s = {LIMITS.message_timeout_s:.0f}
"""


@dataclass(slots=True)
class Heard:
    """What honest terminals heard in one step."""

    exchanges: list[Exchange] = field(default_factory=list)

    def line(self) -> str:
        answered = [e for e in self.exchanges if e.response_code is not None]
        approved = sum(e.response_code == "00" for e in answered)
        if not answered:
            return f"0/{len(self.exchanges)} answered"
        ms = sorted(e.latency_s * 1000 for e in answered)
        p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
        return (f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, "
                f"{approved}/{len(self.exchanges)} answered 00, "
                f"{len(self.exchanges) - len(answered)} unanswered")

    @property
    def all_approved(self) -> bool:
        return bool(self.exchanges) and all(e.response_code == "00" for e in self.exchanges)


async def honest_step(port: int, seconds: float, newcomers: bool = False) -> tuple[Heard, Heard]:
    """The connected terminals buy for `seconds`; with `newcomers`, a terminal
    also dials in afresh each second for one purchase."""
    connected, arriving = Heard(), Heard()
    end = time.monotonic() + seconds

    async def buy(terminal_id: str) -> None:
        async with await simulator(port, terminal_id) as terminal:
            while time.monotonic() < end:
                connected.exchanges.append(await terminal.purchase(demo.VISA_OK, 12_34))
                await asyncio.sleep(PACE_S)  # pacing, not synchronisation

    async def dial_in() -> None:
        while newcomers and time.monotonic() < end:
            try:
                async with await simulator(port, NEWCOMER) as terminal:
                    arriving.exchanges.append(await terminal.purchase(demo.VISA_OK, 5_00))
            except OSError:
                arriving.exchanges.append(Exchange("purchase", "", "", 5_00, None, 0.0))
            await asyncio.sleep(1.0)  # pacing

    async with asyncio.TaskGroup() as group:
        for terminal_id in SESSION_TERMINALS:
            group.create_task(buy(terminal_id))
        group.create_task(dial_in())
    return connected, arriving


async def simulator(port: int, terminal_id: str) -> TerminalSimulator:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, local_addr=(TERMINAL_ADDRESS[terminal_id], 0)), ANSWER_TIMEOUT_S)
    transport = TcpTransport(reader, writer)
    return TerminalSimulator(TCP_PROFILE, transport, terminal_id, MERCHANT, demo_cards(),
                             response_timeout_s=ANSWER_TIMEOUT_S, max_repeats=0)


@dataclass(slots=True)
class Holder:
    """Sockets held open and never written to; re-opened when the gateway closes one."""

    port: int
    sockets: list[socket.socket] = field(default_factory=list)
    opened: int = 0

    def fill(self, per_address: int) -> None:
        for address in ATTACK_ADDRESSES:
            live = sum(sock.getsockname()[0] == address for sock in self.sockets)
            for _ in range(per_address - live):
                with contextlib.suppress(OSError):
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=2,
                                                    source_address=(address, 0))
                    sock.setblocking(False)
                    self.sockets.append(sock)
                    self.opened += 1

    def reap(self) -> None:
        """Forget (and close) the sockets the gateway has closed."""
        for sock in [s for s in self.sockets if not _open(s)]:
            sock.close()
            self.sockets.remove(sock)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


async def held_sockets_step(port: int) -> tuple[Heard, Heard, str, bool]:
    holder = Holder(port)
    per_address = 2 * LIMITS.max_connections // len(ATTACK_ADDRESSES)  # twice the cap in all
    done = asyncio.Event()

    async def keep_holding() -> None:
        while not done.is_set():
            await asyncio.to_thread(holder.fill, per_address)
            holder.reap()
            await asyncio.sleep(0.5)  # the attacker's pace

    attack = asyncio.create_task(keep_holding())
    try:
        await asyncio.sleep(1.0)  # the cap is reached before the terminals start
        connected, arriving = await honest_step(port, STEP_S, newcomers=True)
    finally:
        done.set()
        await attack
    holder.reap()
    held = len(holder.sockets)
    holder.close()
    line = (f"{holder.opened:,} sockets opened from {len(ATTACK_ADDRESSES)} addresses "
            f"({per_address} each, re-opened when closed), {held} held open at the end "
            f"(cap {LIMITS.max_connections}, {LIMITS.max_per_address} per address)")
    return connected, arriving, line, held <= LIMITS.max_connections


async def slowloris_step(port: int) -> tuple[Heard, str, bool]:
    closed_after: list[float] = []

    async def trickle(address: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=(address, 0))
        started = time.monotonic()
        writer.write((200).to_bytes(2, "big"))
        try:
            while time.monotonic() - started < 3 * LIMITS.message_timeout_s:
                try:
                    if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                        break
                except TimeoutError:
                    writer.write(b"0")  # a byte a second
        except OSError:
            pass
        closed_after.append(time.monotonic() - started)
        writer.close()

    addresses = [ATTACK_ADDRESSES[n % len(ATTACK_ADDRESSES)]
                 for n in range(SLOWLORIS_CONNECTIONS)]
    async with asyncio.TaskGroup() as group:
        for address in addresses:
            group.create_task(trickle(address))
        connected, _ = await honest_step(port, STEP_S + 5)
    worst = max(closed_after)
    line = (f"{SLOWLORIS_CONNECTIONS} connections, a length header then a byte a second: "
            f"all closed, the last after {worst:.1f} s (message_timeout_s "
            f"{LIMITS.message_timeout_s:g})")
    return connected, line, worst < LIMITS.message_timeout_s + 3


async def sessions_phase(port: int, emit: Callable[[str], None],
                         check: Callable[[bool, str], None]) -> None:
    """Run the three steps; `emit(line)` and `check(ok, what)` are the Report's."""
    baseline, _ = await honest_step(port, STEP_S)
    emit(f"sessions baseline: {len(SESSION_TERMINALS)} terminals, no attack: {baseline.line()}")
    connected, arriving, held, bounded = await held_sockets_step(port)
    emit(f"sessions held sockets: {held}")
    emit(f"sessions held sockets: connected terminals {connected.line()}; newcomers "
         f"dialling in {arriving.line()}")
    loris, line, closed = await slowloris_step(port)
    emit(f"sessions slowloris: {line}")
    emit(f"sessions slowloris: terminals {loris.line()}")
    check(baseline.all_approved, "sessions: baseline purchases")
    check(bounded, "sessions: more sockets held than the cap")
    check(connected.all_approved and arriving.all_approved,
          "sessions: an honest terminal went unanswered while sockets were held")
    check(closed, "sessions: a slowloris outlived the message timeout")
    check(loris.all_approved, "sessions: an honest terminal went unanswered during a slowloris")
