"""What every scenario shares: its context, its result, the registry.

A scenario is an async function `(ScenarioContext) -> ScenarioResult`
registered under a name with `@scenario("name")`; its docstring's first
paragraph is its `--help` text. The context says how to reach the peer
(a gateway, or the acquirer simulator directly) and which cards the
terminal holds; the result carries every exchange and the checks the
scenario makes of them, so tests, the demo and the CLI read one structure.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from posgw.drivers.base import Transport
from posgw.protocols.profile import Profile
from posgw.simulator.acquirer_host import AcquirerHost
from posgw.simulator.cards import Card, demo_cards
from posgw.simulator.requests import StanCounter
from posgw.simulator.shifted_clock import ShiftedClock
from posgw.simulator.terminal import Exchange, TerminalSimulator

Connect = Callable[[], Awaitable[Transport]]


@dataclass(slots=True)
class ScenarioContext:
    """How a scenario reaches its peer and what its terminal carries.

    `acquirer` is set only when the peer is the in-process acquirer
    simulator: scenarios then also check the issuer's side (balances).
    """

    profile: Profile
    connect: Connect
    terminal_id: str = "T0000001"
    merchant_id: str = "M00000000000001"
    cards: list[Card] = field(default_factory=demo_cards)
    clock: ShiftedClock = field(default_factory=ShiftedClock)
    response_timeout_s: float = 2.0
    acquirer: AcquirerHost | None = None
    # One STAN sequence for every terminal the context opens: they are all
    # the same terminal id, and a host takes a reused STAN for a retransmission.
    stans: StanCounter = field(default_factory=StanCounter)

    @asynccontextmanager
    async def terminal(self, wrap: Callable[[Transport], Transport] | None = None
                       ) -> AsyncIterator[TerminalSimulator]:
        """A terminal on a fresh connection (optionally through a faulty wrapper)."""
        transport = await self.connect()
        if wrap is not None:
            transport = wrap(transport)
        terminal = TerminalSimulator(self.profile, transport, self.terminal_id,
                                     self.merchant_id, self.cards, self.clock,
                                     response_timeout_s=self.response_timeout_s,
                                     stans=self.stans)
        async with terminal:
            yield terminal

    def balance(self, pan: str) -> int | None:
        """The issuer's balance, when the peer is the acquirer simulator."""
        return self.acquirer.cards.card(pan).balance if self.acquirer is not None else None


@dataclass(frozen=True, slots=True)
class Check:
    description: str
    passed: bool


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    exchanges: tuple[Exchange, ...]
    checks: tuple[Check, ...]
    link_events: dict[str, int] = field(default_factory=dict)
    skipped: str = ""

    @property
    def passed(self) -> bool:
        return not self.skipped and all(check.passed for check in self.checks)

    @property
    def codes(self) -> list[str | None]:
        return [exchange.response_code for exchange in self.exchanges]


ScenarioFunction = Callable[[ScenarioContext], Awaitable[ScenarioResult]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    run: ScenarioFunction
    summary: str


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register a scenario; its docstring's first paragraph becomes its help."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        doc = inspect.cleandoc(function.__doc__ or "")
        summary = " ".join(doc.split("\n\n", 1)[0].split())
        SCENARIOS[name] = Scenario(name, function, summary)
        return function

    return register


def codes_are(exchanges: Sequence[Exchange], expected: Sequence[str | None]) -> Check:
    actual = [exchange.response_code for exchange in exchanges]
    return Check(f"response codes {list(expected)} (got {actual})", actual == list(expected))


def result(name: str, terminal: TerminalSimulator, *checks: Check) -> ScenarioResult:
    return ScenarioResult(name, tuple(terminal.exchanges), checks, dict(terminal.link_events))


def balance_changed_by(ctx: ScenarioContext, pan: str, before: int | None,
                       expected_change: int) -> tuple[Check, ...]:
    """Issuer-side check, only when the peer is the acquirer simulator."""
    after = ctx.balance(pan)
    if before is None or after is None:
        return ()
    change = after - before
    return (Check(f"balance changed by {expected_change} (got {change})",
                  change == expected_change),)
