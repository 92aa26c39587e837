"""Risk rule evaluation cost per transaction, with 100,000 cards in window state.

    python bench/risk.py [--cards 100000] [--samples 50000]

Fills the engine with `--cards` distinct cards spread over 2,000 terminals
(each card with a few attempts inside the rule windows), then times
`before()` + `after()` for `--samples` further attempts one by one with
perf_counter_ns and prints p50/p99/max. Target (issue #5): p99 < 50 us.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.readme import machine, update_readmes
from posgw.gateway.risk import Attempt, RiskEngine
from posgw.protocols.normalize import ResponseCategory

OUTCOMES = [ResponseCategory.APPROVED] * 8 + [ResponseCategory.INSUFFICIENT_FUNDS,
                                              ResponseCategory.INCORRECT_PIN]


def attempts(count: int, cards: int, start: float, rng: random.Random) -> list[Attempt]:
    return [
        Attempt(f"tx{start + i}", f"card{rng.randrange(cards)}", f"T{rng.randrange(2000)}",
                rng.randrange(100, 500_000), start + i * 0.01,
                outcome=rng.choice(OUTCOMES))
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--update-readme", action="store_true",
                        help="write this run's figures into README.md and bench/README.md")
    args = parser.parse_args()
    rng = random.Random(7)
    engine = RiskEngine()
    engine.rebuild(attempts(3 * args.cards, args.cards, 0.0, rng))
    timings = []
    for attempt in attempts(args.samples, args.cards, 3 * args.cards * 0.01, rng):
        begin = time.perf_counter_ns()
        engine.before(attempt)
        engine.after(attempt)
        timings.append(time.perf_counter_ns() - begin)
    timings.sort()

    def pct(p: float) -> float:
        return timings[min(len(timings) - 1, int(p * len(timings)))] / 1000

    lines = [f"machine: {machine()}",
             f"risk: {args.cards:,} cards in state, {args.samples:,} attempts timed",
             f"risk: per transaction p50 {pct(0.50):.1f} us, p99 {pct(0.99):.1f} us, "
             f"max {timings[-1] / 1000:.1f} us"]
    print("\n".join(lines))
    if args.update_readme:
        update_readmes("risk", "python bench/risk.py", "".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
