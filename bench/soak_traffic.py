"""The soak's terminals: paced to one open-loop schedule, and persistent.

`Pacer` is the schedule: request i is due at start + i / rate, whichever
terminal is free to send it. A terminal busy with a slow answer (the
gateway being restarted) does not slow the schedule down; the requests that
fall due meanwhile go out late, and how late is measured (schedule lag).

`DurableTerminal` wraps a `TerminalSimulator` and behaves as real terminals
do when an answer does not come: it redials a TCP line that dropped and
retransmits the very same request (same STAN, same field 7) until it is
answered. The gateway's dedupe answers a retransmission of a request it
already decided from its ledger, so a retransmission is never a second
charge. It has the simulator's transaction methods, so the demo's traffic
actions (`gateway/cli_demo/traffic.py`) drive it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from posgw.drivers.base import LinkClosed, Transport
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.profiles import load_profile
from posgw.sandbox.demo import traffic
from posgw.sandbox.demo.traffic import Action, Tally, TerminalRun
from posgw.simulator.cards import Card
from posgw.simulator.terminal import LINK_CLOSED, NOT_DELIVERED, Exchange, TerminalSimulator

#: How long a terminal waits for an answer before it retransmits. Short, so
#: a request lost to a SIGKILL is retransmitted soon after the restart.
RESPONSE_TIMEOUT_S = 3.0
#: A request not answered within this (retransmissions included) is given up:
#: longer than a gateway restart takes (see soak_stack.GATEWAY_START_DEADLINE_S).
GIVE_UP_AFTER_S = 660.0
REDIAL_PAUSE_S = 0.2
#: Kinds the gateway records as transactions (balance inquiries are answered only).
MONEY_KINDS = frozenset({"purchase", "refund", "void"})

#: (action, weight): mostly approved sales; some declines (wrong PINs, a
#: nearly empty card), refunds, voids, freezes (a card swiped three times),
#: deliberate retransmissions and answers lost on the way back.
SOAK_ACTIONS: tuple[tuple[Action, int], ...] = (
    (traffic.plain_purchase, 86), (traffic.refund, 3), (traffic.void_last, 3),
    (traffic.balance_inquiry, 2), (traffic.retransmission, 2), (traffic.lost_response, 1),
    (traffic.rapid_repeat, 1), (traffic.wrong_pins, 1), (traffic.descending_probe, 1),
)


class Pacer:
    """The open-loop schedule shared by every terminal."""

    def __init__(self, rate: float, start: float) -> None:
        self.rate, self.start = rate, start
        self.issued = 0
        self.lags: list[float] = []  # seconds each request went out after its due time

    async def slot(self) -> None:
        due = self.start + self.issued / self.rate
        self.issued += 1
        delay = due - SYSTEM_CLOCK.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing to the schedule, not synchronisation
        self.lags.append(max(0.0, SYSTEM_CLOCK.monotonic() - due))


@dataclass(slots=True)
class TrafficLog:
    """What the terminals saw, over all of them."""

    requests: int = 0  # new requests (each with its own STAN)
    last_sent: float = 0.0  # monotonic time the last new request went out
    answered: int = 0
    unanswered: int = 0  # given up after GIVE_UP_AFTER_S
    retransmissions: int = 0  # sent again because the answer did not come
    redials: int = 0
    latencies: list[float] = field(default_factory=list)  # request → answer, retransmits in
    approved: set[tuple[str, str]] = field(default_factory=set)  # (terminal, STAN) of money kinds
    answered_by_link: Counter[str] = field(default_factory=Counter)
    tally: Tally = field(default_factory=Tally)


class DurableTerminal:
    """A terminal that gets every request answered; see the module docstring."""

    def __init__(self, simulator: TerminalSimulator, transport: Transport, terminal_id: str,
                 link: str, pacer: Pacer, log: TrafficLog,
                 redial: Callable[[], Awaitable[Transport]] | None = None) -> None:
        self.simulator, self.transport = simulator, transport
        self.terminal_id, self.link = terminal_id, link
        self.pacer, self.log, self.redial = pacer, log, redial
        self._kind = ""
        self._losing = False  # the next answer is dropped on purpose: not a latency sample

    async def __aenter__(self) -> DurableTerminal:
        await self.simulator.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.simulator.__aexit__(exc_type, exc, tb)
        if self.redial is not None:  # a TCP connection is ours; a pty or USB end is its line's
            with contextlib.suppress(LinkClosed, OSError):
                await self.transport.close()

    # --- what traffic actions call -------------------------------------------------

    async def purchase(self, pan: str, amount: int, *, pin: str | None = None) -> Exchange:
        return await self._new("purchase", lambda: self.simulator.purchase(pan, amount, pin=pin))

    async def refund(self, pan: str, amount: int) -> Exchange:
        return await self._new("refund", lambda: self.simulator.refund(pan, amount))

    async def void(self, pan: str, amount: int, rrn: str) -> Exchange:
        return await self._new("void", lambda: self.simulator.void(pan, amount, rrn))

    async def balance_inquiry(self, pan: str) -> Exchange:
        return await self._new("balance_inquiry", lambda: self.simulator.balance_inquiry(pan))

    async def send_again(self) -> Exchange:
        """A deliberate retransmission of the last request (not a new one)."""
        started = SYSTEM_CLOCK.monotonic()
        return await self._answered(await self.simulator.send_again(), started, new=False)

    def lose_next_responses(self, count: int = 1) -> None:
        self._losing = True
        self.simulator.lose_next_responses(count)

    # --- persistence -----------------------------------------------------------------

    async def _new(self, kind: str, send: Callable[[], Awaitable[Exchange]]) -> Exchange:
        await self.pacer.slot()
        self._kind = kind
        self.log.requests += 1
        started = self.log.last_sent = SYSTEM_CLOCK.monotonic()
        return await self._answered(await send(), started, new=True)

    async def _answered(self, exchange: Exchange, started: float, *, new: bool) -> Exchange:
        give_up = started + GIVE_UP_AFTER_S
        while exchange.response_code is None and SYSTEM_CLOCK.monotonic() < give_up:
            if exchange.note in (LINK_CLOSED, NOT_DELIVERED) and self.redial is not None:
                await self._redial(give_up)
            elif exchange.note == LINK_CLOSED:  # a pty or USB end has no redial: wait
                await asyncio.sleep(REDIAL_PAUSE_S)
            self.log.retransmissions += 1
            exchange = await self.simulator.send_again()
        self._record(exchange, started, new=new)
        return exchange

    async def _redial(self, give_up: float) -> None:
        assert self.redial is not None
        while SYSTEM_CLOCK.monotonic() < give_up:
            try:
                transport = await self.redial()
            except LinkClosed:  # the gateway is restarting: redial shortly
                await asyncio.sleep(REDIAL_PAUSE_S)
                continue
            with contextlib.suppress(LinkClosed, OSError):
                await self.transport.close()  # the dropped connection's socket
            self.transport = transport
            await self.simulator.attach(transport)
            self.log.redials += 1
            return

    def _record(self, exchange: Exchange, started: float, *, new: bool) -> None:
        log = self.log
        log.tally.add(exchange)
        if exchange.response_code is None:
            log.unanswered += new
            return
        if new:
            log.answered += 1
            log.answered_by_link[self.link] += 1
            if not self._losing:
                log.latencies.append(SYSTEM_CLOCK.monotonic() - started)
        self._losing = False
        if exchange.approved and self._kind in MONEY_KINDS:
            log.approved.add((self.terminal_id, exchange.stan))


@dataclass(frozen=True, slots=True)
class TerminalSpec:
    terminal_id: str
    link: str  # "serial", "usb" or "tcp"
    profile: str


def tcp_redial(port: int) -> Callable[[], Awaitable[Transport]]:
    async def dial() -> Transport:
        return await connect_tcp("127.0.0.1", port, timeout=1)

    return dial


def durable_terminal(spec: TerminalSpec, transport: Transport, cards: list[Card], pacer: Pacer,
                     log: TrafficLog, merchant_id: str,
                     redial: Callable[[], Awaitable[Transport]] | None = None
                     ) -> DurableTerminal:
    simulator = TerminalSimulator(load_profile(spec.profile), transport, spec.terminal_id,
                                  merchant_id, cards, response_timeout_s=RESPONSE_TIMEOUT_S,
                                  max_repeats=0)  # DurableTerminal retransmits instead
    return DurableTerminal(simulator, transport, spec.terminal_id, spec.link, pacer, log, redial)


async def run_terminal(terminal: DurableTerminal, pool: list[Card], seed: int,
                       until: float) -> None:
    """Weighted actions until `until` (monotonic) on an entered `terminal`;
    the pacer sets the rate."""
    # The run's own tally is left aside: the terminal counts what it heard,
    # once per request, retransmissions folded in.
    run = TerminalRun(terminal, pool, random.Random(f"{seed}-{terminal.terminal_id}"),
                      Tally())
    actions, weights = zip(*SOAK_ACTIONS, strict=True)
    while SYSTEM_CLOCK.monotonic() < until:
        await run.rng.choices(actions, weights)[0](run)
