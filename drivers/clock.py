"""The one clock abstraction: monotonic time for timers, UTC for records.

Protocol code never reads a clock; drivers, the daemon and the simulators
take a `Clock` so tests can drive time instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes backwards."""
        ...

    def utc_now(self) -> datetime:
        """Aware UTC wall-clock time."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def utc_now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()
