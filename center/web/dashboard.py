"""The dashboard's figures, each counted by the database in one grouped query.

The center may hold millions of events: no row is read into Python to be
counted. Today's figures read one day of center_events through the index
that starts with the day (occurred_date: also the partition key on
PostgreSQL); the freeze rate reads seven days the same way. Quarantined
payloads are counted per kind in center_quarantine (bounded by the cap per
source) and center_quarantine_overflow (the ones only counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from posgw.protocols.contract import DECLINED, FROZEN, SETTLED

#: Days the freeze-rate chart covers, today included.
FREEZE_DAYS = 7
#: Branches the dashboard shows at most (the busiest first).
MAX_BRANCHES = 12
#: A payment the risk rules judged: settled, frozen or declined. The freeze
#: rate is the frozen share of these (reversals, voids and refunds are not
#: payments of their own).
JUDGED = (SETTLED, FROZEN, DECLINED)


@dataclass(frozen=True, slots=True)
class BranchTotal:
    branch_id: str
    status: str
    currency: str
    count: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class FreezeDay:
    day: str
    branch_id: str
    frozen: int
    judged: int

    @property
    def rate(self) -> float:
        return self.frozen / self.judged if self.judged else 0.0


def today_totals(engine: Engine, today: date) -> list[BranchTotal]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT branch_id, status, currency, count(*), coalesce(sum(amount_minor), 0) "
            "FROM center_events WHERE occurred_date = :d "
            "GROUP BY branch_id, status, currency ORDER BY branch_id, status, currency"),
            {"d": today.isoformat()})
        return [BranchTotal(str(b), str(s), str(c), int(n), int(a)) for b, s, c, n, a in rows]


def hourly(engine: Engine, today: date) -> dict[tuple[int, str], int]:
    """(UTC hour, status) -> events of today (occurred_at is ISO 8601 UTC:
    characters 12-13 are the hour)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT substr(occurred_at, 12, 2) AS hour, status, count(*) FROM center_events "
            "WHERE occurred_date = :d GROUP BY substr(occurred_at, 12, 2), status"),
            {"d": today.isoformat()})
        return {(int(hour), str(status)): int(count) for hour, status, count in rows
                if str(hour).isdigit()}


def freeze_days(engine: Engine, today: date) -> list[FreezeDay]:
    first = today - timedelta(days=FREEZE_DAYS - 1)
    judged = ", ".join(f"'{status}'" for status in JUDGED)  # constants, not input
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT occurred_date, branch_id, "
            f"sum(CASE WHEN status = '{FROZEN}' THEN 1 ELSE 0 END), count(*) "
            f"FROM center_events WHERE occurred_date BETWEEN :first AND :last "
            f"AND status IN ({judged}) GROUP BY occurred_date, branch_id "
            "ORDER BY occurred_date, branch_id"),
            {"first": first.isoformat(), "last": today.isoformat()})
        return [FreezeDay(str(d), str(b), int(f), int(n)) for d, b, f, n in rows]


def days_of_freeze_chart(today: date) -> list[str]:
    return [(today - timedelta(days=back)).isoformat()
            for back in range(FREEZE_DAYS - 1, -1, -1)]


def quarantined_by_kind(engine: Engine) -> dict[str, tuple[int, int]]:
    """kind -> (rows kept, payloads only counted past the cap)."""
    with engine.connect() as conn:
        kept: dict[str, int] = {str(kind): int(n) for kind, n in conn.execute(text(
            "SELECT kind, count(*) FROM center_quarantine GROUP BY kind"))}
        counted: dict[str, int] = {str(kind): int(n) for kind, n in conn.execute(text(
            "SELECT kind, coalesce(sum(count), 0) FROM center_quarantine_overflow "
            "GROUP BY kind"))}
    kinds = sorted(set(kept) | set(counted))
    return {kind or "unknown": (kept.get(kind, 0), counted.get(kind, 0)) for kind in kinds}
