"""Run matching over business days and open a case per new finding.

Day by day, each in its own transaction: a month is 30 short queries
rather than one long one, progress can be shown, and what a day found is
committed before the next begins (matching stopped half way loses nothing;
run again, it opens only what is new).
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


@dataclass
class MatchResult:
    days: int = 0
    found: Counter[str] = field(default_factory=Counter)  # by kind, new or not
    opened: Counter[str] = field(default_factory=Counter)  # by kind, new cases


def findings_of_day(engine: Engine, day: date, calendar: WorkingCalendar,
                    settlement: SettlementConfig, as_of: date) -> list[Finding]:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # A day's statements are costly enough on paper for PostgreSQL to
            # JIT-compile each, which took longer than running them.
            conn.execute(text("SET LOCAL jit = off"))
        owed = owed_days(conn, calendar, settlement.value_days, day, day)
        return [*line_findings(conn, day, day), *missing_findings(conn, day, day),
                *fee_findings(conn, day, day),
                *credit_findings(conn, owed, day, day, calendar=calendar,
                                 value_days=settlement.value_days,
                                 grace_days=settlement.credit_grace_days, as_of=as_of)]


def run_matching(engine: Engine, first: date, last: date, *, calendar: WorkingCalendar,
                 settlement: SettlementConfig, as_of: date | None = None,
                 progress: Callable[[date], None] | None = None) -> MatchResult:
    """Match `first`..`last` (business days, inclusive) as of `as_of` (today, UTC)."""
    if last < first:
        raise ValueError(f"{last} is before {first}")
    if (last - first).days >= MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days in one run")
    today = as_of or datetime.now(UTC).date()
    result = MatchResult()
    day = first
    while day <= last:
        findings = findings_of_day(engine, day, calendar, settlement, today)
        with engine.begin() as conn:
            for finding in findings:
                result.found[finding.kind] += 1
                result.opened[finding.kind] += open_cases(conn, [finding])
        result.days += 1
        if progress is not None:
            progress(day)
        day += timedelta(days=1)
    return result
