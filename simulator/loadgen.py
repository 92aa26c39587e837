"""Load generator: N terminals, each sending R purchases a second, for D seconds.

Each terminal has its own connection and terminal id (counting up from
the first one, T0000001 by default: T0000001, T0000002, ...), and
paces itself on a fixed schedule (request k at start + k/R): a terminal
waits for one answer before sending the next, as real ones do, so a slow
peer lowers the achieved rate instead of piling requests up. Latency is
send-to-response on the system clock; percentiles are exact (nearest rank
over the sorted samples), not estimated.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.protocols.profile import Profile
from posgw.simulator import cards as demo
from posgw.simulator.cards import Card
from posgw.simulator.scenario_kit import Connect
from posgw.simulator.terminal import Exchange, TerminalSimulator

#: Cards with balances far above what a load run spends, and no limits.
LOAD_CARDS = (demo.VISA_OK, demo.UNIONPAY_OK)
LOAD_AMOUNT = 1_00
LOAD_RESPONSE_TIMEOUT_S = 5.0

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a run achieved; latencies in seconds, None when nothing was answered."""

    terminals: int
    target_rate: float  # requests per second, all terminals together
    duration_s: float
    sent: int
    answered: int
    approved: int
    elapsed_s: float
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def achieved_rate(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile `q` (0 < q <= 100) of already sorted samples."""
    if not sorted_samples:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100 * len(sorted_samples)))
    return sorted_samples[rank - 1]


async def run_load(profile: Profile, connect: Connect, *, terminals: int, rate: float,
                   duration_s: float, cards: list[Card] | None = None,
                   merchant_id: str = "M00000000000001", first_terminal_id: str = "T0000001",
                   clock: Clock = SYSTEM_CLOCK,
                   on_progress: Progress | None = None) -> LoadReport:
    """Run the load and report; `rate` is per terminal."""
    ids = terminal_ids(first_terminal_id, terminals)
    cards = cards if cards is not None else demo.demo_cards()
    exchanges: list[Exchange] = []
    started = SYSTEM_CLOCK.monotonic()
    async with asyncio.TaskGroup() as group:
        for terminal_id in ids:
            group.create_task(_one_terminal(
                profile, connect, terminal_id, merchant_id, cards, clock,
                rate, duration_s, exchanges, on_progress))
    elapsed = SYSTEM_CLOCK.monotonic() - started
    return _report(exchanges, terminals, rate, duration_s, elapsed)


def terminal_ids(first: str, count: int) -> list[str]:
    """`count` ids counting up from `first` in its trailing digits, same width
    (T0000041 -> T0000041, T0000042, ...); ValueError when they run out."""
    stem = first.rstrip("0123456789")
    digits = first[len(stem):]
    if count > 1 and not digits:
        raise ValueError(f"terminal id {first!r} must end in digits to number {count} terminals")
    if count > 1 and len(str(int(digits) + count - 1)) > len(digits):
        raise ValueError(f"{count} terminal ids from {first!r} do not fit in {len(first)} "
                         "characters")
    return [first] + [f"{stem}{int(digits) + n:0{len(digits)}d}" for n in range(1, count)]


async def _one_terminal(profile: Profile, connect: Connect, terminal_id: str, merchant_id: str,
                        cards: list[Card], clock: Clock, rate: float, duration_s: float,
                        exchanges: list[Exchange], on_progress: Progress | None) -> None:
    transport = await connect()
    terminal = TerminalSimulator(profile, transport, terminal_id, merchant_id, cards, clock,
                                 response_timeout_s=LOAD_RESPONSE_TIMEOUT_S, max_repeats=0)
    interval = 1.0 / rate
    start = SYSTEM_CLOCK.monotonic()
    async with terminal:
        for sent in range(math.floor(duration_s * rate)):
            delay = start + sent * interval - SYSTEM_CLOCK.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing to the schedule, not synchronisation
            exchange = await terminal.purchase(LOAD_CARDS[sent % len(LOAD_CARDS)], LOAD_AMOUNT)
            exchanges.append(exchange)
            if on_progress is not None:
                on_progress(1)
            if exchange.note and exchange.response_code is None and terminal_gone(exchange):
                return


def terminal_gone(exchange: Exchange) -> bool:
    """A closed line ends that terminal's run; timeouts do not."""
    return exchange.note in ("link closed", "not delivered")


def _report(exchanges: list[Exchange], terminals: int, rate: float, duration_s: float,
            elapsed: float) -> LoadReport:
    answered = [e for e in exchanges if e.response_code is not None]
    latencies = sorted(e.latency_s for e in answered)
    codes = Counter(e.response_code or "none" for e in exchanges)

    def pct(q: float) -> float | None:
        return percentile(latencies, q) if latencies else None

    return LoadReport(
        terminals=terminals, target_rate=terminals * rate, duration_s=duration_s,
        sent=len(exchanges), answered=len(answered),
        approved=sum(1 for e in answered if e.approved), elapsed_s=elapsed,
        p50_s=pct(50), p95_s=pct(95), p99_s=pct(99), codes=dict(codes),
    )
