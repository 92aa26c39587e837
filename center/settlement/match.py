"""Run matching over business days and open a case per new finding.

A week at a time, each in its own transaction: a month is five short
rounds of queries rather than one long one, progress can be shown, and
what a week found is committed before the next begins (matching stopped
half way loses nothing; run again, it opens only what is new). A week,
not a day: each transaction join also reads a day either side of its
days, which for one day at a time is three days of events per day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from posgw.center.calendar import WorkingCalendar
from posgw.center.config import SettlementConfig
from posgw.center.settlement.cases import Finding, open_cases
from posgw.center.settlement.match_lines import line_findings, missing_findings
from posgw.center.settlement.match_totals import credit_findings, fee_findings
from posgw.center.settlement.owed import owed_days

#: One run covers at most this many days (a year and a bit): a bound on the work asked.
MAX_DAYS = 400
#: Days matched together: the database's work for a week of a large
#: acquirer (700,000 lines) stays a few seconds, and a shorter round than
#: that pays more for the day either side it reads.
CHUNK_DAYS = 7


@dataclass
class MatchResult:
    days: int = 0
    found: Counter[str] = field(default_factory=Counter)  # by kind, new or not
    opened: Counter[str] = field(default_factory=Counter)  # by kind, new cases


def findings_of(engine: Engine, first: date, last: date, calendar: WorkingCalendar,
                settlement: SettlementConfig, as_of: date) -> list[Finding]:
    """Every finding of business days `first`..`last`."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # These statements are costly enough on paper for PostgreSQL to
            # JIT-compile each, which took longer than running them.
            conn.execute(text("SET LOCAL jit = off"))
        owed = owed_days(conn, calendar, settlement.value_days, first, last)
        return [*line_findings(conn, first, last), *missing_findings(conn, first, last),
                *fee_findings(conn, first, last),
                *credit_findings(conn, owed, first, last, calendar=calendar,
                                 value_days=settlement.value_days,
                                 grace_days=settlement.credit_grace_days, as_of=as_of)]


def run_matching(engine: Engine, first: date, last: date, *, calendar: WorkingCalendar,
                 settlement: SettlementConfig, as_of: date | None = None,
                 progress: Callable[[date], None] | None = None) -> MatchResult:
    """Match `first`..`last` (business days, inclusive) as of `as_of` (today,
    UTC); `progress` is called with each day matched."""
    if last < first:
        raise ValueError(f"{last} is before {first}")
    if (last - first).days >= MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days in one run")
    today = as_of or datetime.now(UTC).date()
    result = MatchResult()
    start = first
    while start <= last:
        end = min(start + timedelta(days=CHUNK_DAYS - 1), last)
        findings = findings_of(engine, start, end, calendar, settlement, today)
        with engine.begin() as conn:
            for finding in findings:
                result.found[finding.kind] += 1
                result.opened[finding.kind] += open_cases(conn, [finding])
        for offset in range((end - start).days + 1):
            result.days += 1
            if progress is not None:
                progress(start + timedelta(days=offset))
        start = end + timedelta(days=1)
    return result
