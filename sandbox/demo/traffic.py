"""What the demo's terminals do: mostly purchases, and now and then each of
the things a branch sees — refunds, voids, balance inquiries, a lost
response (reversal), a retransmission, a card swiped again and again, wrong
PINs, descending trial amounts.

Each terminal runs one loop on one long-lived line (a pty, the emulated USB
device or a TCP connection), paced to `rate` requests per second.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.simulator.cards import Card
from posgw.simulator.terminal import Exchange

WRONG_PIN = "0000"
#: Issuer balance of a probe card: trial amounts above it are declined 51.
PROBE_BALANCE = 50_00
Action = Callable[["TerminalRun"], Awaitable[None]]


@dataclass(slots=True)
class Tally:
    """What the terminals heard, shared by all of them (the progress line)."""

    answered: int = 0
    unanswered: int = 0
    codes: Counter[str] = field(default_factory=Counter)

    def add(self, exchange: Exchange) -> None:
        if exchange.response_code is None:
            self.unanswered += 1
        else:
            self.answered += 1
            self.codes[exchange.response_code] += 1


class TrafficTerminal(Protocol):
    """What the actions ask of a terminal: the simulator itself, or a bench's
    wrapper around it that redials and retransmits."""

    async def __aenter__(self) -> object: ...
    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...
    async def purchase(self, pan: str, amount: int, *, pin: str | None = None) -> Exchange: ...
    async def refund(self, pan: str, amount: int) -> Exchange: ...
    async def void(self, pan: str, amount: int, rrn: str) -> Exchange: ...
    async def balance_inquiry(self, pan: str) -> Exchange: ...
    async def send_again(self) -> Exchange: ...
    def lose_next_responses(self, count: int = 1) -> None: ...


@dataclass(slots=True)
class TerminalRun:
    terminal: TrafficTerminal
    pool: list[Card]
    rng: random.Random
    tally: Tally
    approved: list[tuple[str, int, str]] = field(default_factory=list)  # pan, amount, rrn

    def card(self) -> Card:
        return self.pool[self.rng.randrange(len(self.pool))]

    def amount(self) -> int:
        return self.rng.randrange(1_00, 300_00)

    def note(self, exchange: Exchange) -> Exchange:
        self.tally.add(exchange)
        return exchange

    async def purchase(self, card: Card, amount: int, pin: str | None = None) -> Exchange:
        exchange = self.note(await self.terminal.purchase(card.pan, amount, pin=pin))
        if exchange.approved and exchange.rrn:
            self.approved.append((card.pan, amount, exchange.rrn))
        return exchange


async def plain_purchase(run: TerminalRun) -> None:
    await run.purchase(run.card(), run.amount())


async def refund(run: TerminalRun) -> None:
    run.note(await run.terminal.refund(run.card().pan, run.amount()))


async def void_last(run: TerminalRun) -> None:
    if run.approved:
        pan, amount, rrn = run.approved.pop()
        run.note(await run.terminal.void(pan, amount, rrn))


async def balance_inquiry(run: TerminalRun) -> None:
    run.note(await run.terminal.balance_inquiry(run.card().pan))


async def retransmission(run: TerminalRun) -> None:
    await run.purchase(run.card(), run.amount())
    run.note(await run.terminal.send_again())


async def lost_response(run: TerminalRun) -> None:
    """The answer never arrives: the terminal reverses, then repeats the sale."""
    run.terminal.lose_next_responses(1)
    await run.purchase(run.card(), run.amount())


async def rapid_repeat(run: TerminalRun) -> None:
    card, amount = run.card(), run.amount()
    for step in range(3):
        await run.purchase(card, amount + step)


async def wrong_pins(run: TerminalRun) -> None:
    card = run.card()
    for _ in range(3):
        await run.purchase(card, run.amount(), pin=WRONG_PIN)
    await run.purchase(card, run.amount())  # locked out at the gateway: 75


async def descending_probe(run: TerminalRun) -> None:
    probe = run.card()
    probe.balance = PROBE_BALANCE  # the issuer's side: this card is nearly empty
    for amount in (80_00, 65_00, 40_00):
        await run.purchase(probe, amount)


#: (action, weight): ordinary sales dominate, as at a real counter.
ACTIONS: tuple[tuple[Action, int], ...] = (
    (plain_purchase, 82), (refund, 3), (void_last, 3), (balance_inquiry, 3),
    (retransmission, 3), (lost_response, 1), (rapid_repeat, 2), (wrong_pins, 1),
    (descending_probe, 2),
)


async def run_terminal(run: TerminalRun, *, rate: float, duration_s: float) -> None:
    """Pick weighted actions at `rate` per second until `duration_s` has passed."""
    actions, weights = zip(*ACTIONS, strict=True)
    start = SYSTEM_CLOCK.monotonic()
    interval = 1.0 / rate
    step = 0
    while (now := SYSTEM_CLOCK.monotonic()) - start < duration_s:
        delay = start + step * interval - now
        if delay > 0:
            await asyncio.sleep(delay)  # pacing to the schedule, not synchronisation
        await run.rng.choices(actions, weights)[0](run)
        step += 1
