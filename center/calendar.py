"""Working days: the calendar promised dates are counted in.

A re-cleared freeze reaches the merchant in so many working days, a return
to card in so many more, a settlement is credited T+1 working day: each
counts days that are neither a weekend day nor a listed holiday
(`[calendar]` in center.toml). Pure: dates in, dates out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

#: Monday is 0 (date.weekday()).
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WEEKEND = frozenset({5, 6})
#: A bound on the days one count may walk: a calendar that lists every
#: day as a holiday must fail, not loop.
MAX_SPAN_DAYS = 3 * 366


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    holidays: frozenset[date] = frozenset()
    weekend: frozenset[int] = DEFAULT_WEEKEND

    @classmethod
    def of(cls, holidays: Iterable[date] = (),
           weekend: Iterable[int] = DEFAULT_WEEKEND) -> WorkingCalendar:
        return cls(frozenset(holidays), frozenset(weekend))

    def is_working_day(self, day: date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (`start` itself is not
        counted; 0 gives `start` or, when it is not a working day, the next one)."""
        if days < 0:
            raise ValueError("days must not be negative")
        day, counted = start, 0
        for _ in range(MAX_SPAN_DAYS):
            if counted == days and self.is_working_day(day):
                return day
            day += timedelta(days=1)
            counted += self.is_working_day(day) and counted < days
        raise ValueError(f"no {days} working days within {MAX_SPAN_DAYS} days of {start}")

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (0 when end <= start)."""
        return sum(1 for n in range(1, (end - start).days + 1)
                   if self.is_working_day(start + timedelta(days=n)))
