"""The one reconnect-with-backoff policy: exponential, capped, jittered.

Used by every reconnect loop (serial/USB replug, upstream TCP, MQTT).
The ceiling doubles per attempt from `base` up to `cap`
(min(cap, base * 2**attempt)); each delay is drawn uniformly from the upper
half of it, [ceiling / 2, ceiling] ("equal jitter", AWS architecture blog,
2015). Half the ceiling is always waited, so a flapping peer is never
retried at once, and the other half is random, so many terminals that lost
the same switch do not reconnect in lockstep. `reset` after a successful
connect starts again from `base`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DEFAULT_BASE_S = 0.5
DEFAULT_CAP_S = 30.0  # issue #3: reconnects back off with jitter, cap 30 s


@dataclass(slots=True)
class Backoff:
    base: float = DEFAULT_BASE_S
    cap: float = DEFAULT_CAP_S
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        """Delay before the next attempt; grows until `reset`."""
        ceiling = min(self.cap, self.base * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Call after a successful connect."""
        self.attempt = 0
