"""A Clock that can jump forward: the system clock plus an offset.

Scenarios such as "the same card retried after six minutes" advance it
instead of sleeping. Time still flows normally between jumps, so it is a
fair clock for a real peer too (the terminal stamps fields 7/12/13 with it;
the acquirer simulator measures its frequency window with it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from posgw.drivers.clock import SYSTEM_CLOCK, Clock


class ShiftedClock:
    """`clock.advance(360)` and six minutes have passed."""

    def __init__(self, base: Clock = SYSTEM_CLOCK) -> None:
        self._base = base
        self._offset = 0.0

    def monotonic(self) -> float:
        return self._base.monotonic() + self._offset

    def utc_now(self) -> datetime:
        return self._base.utc_now() + timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self._offset += seconds
