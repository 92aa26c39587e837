"""What each merchant is owed, per business day: summed in the database.

A business day is the UTC day of the event (`occurred_date`), like the
center's totals. Per merchant, day and currency:

- gross: `settled` events (sales, and freezes released that day);
- returns: `reversed`, `voided` and `refund` events (a freeze returned to
  the card excluded: it was never paid);
- held: `frozen` events of the day (owed to nobody until released; a
  release is owed on its own day, as gross);
- fee: by the plan in force that day, per sale not undone (center/settlement/fees.py);
- net: gross - returns - fee;
- value date: the day + `[settlement] value_days` working days ([calendar]).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from posgw.center.calendar import WorkingCalendar
from posgw.center.settlement.ledger_sql import (
    PLAN_PERIODS_CTE,
    is_undone,
    merchant_return,
    plan_fee,
    plan_join,
    undo_keys_cte,
)

#: A reversal or void is looked for up to this many days after its sale.
UNDO_LAG_DAYS = 1


@dataclass(frozen=True, slots=True)
class OwedDay:
    merchant_id: str
    business_date: date
    currency: str
    sales: int  # settled events
    gross_minor: int
    returns_minor: int
    held_minor: int
    fee_minor: int
    value_date: date

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.returns_minor - self.fee_minor


def owed_sql(dialect: str, *, one_merchant: bool) -> str:
    fee = plan_fee("e.amount_minor")
    merchant = "AND e.merchant_id = :merchant " if one_merchant else ""
    return (
        f"WITH {PLAN_PERIODS_CTE}, {undo_keys_cte(dialect)} "
        "SELECT e.merchant_id, e.occurred_date, e.currency, "
        "SUM(CASE WHEN e.status = 'settled' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN e.status = 'settled' THEN e.amount_minor ELSE 0 END), "
        f"SUM(CASE WHEN {merchant_return(dialect)} THEN e.amount_minor ELSE 0 END), "
        "SUM(CASE WHEN e.status = 'frozen' THEN e.amount_minor ELSE 0 END), "
        f"SUM(CASE WHEN e.status = 'settled' AND NOT {is_undone()} THEN {fee} ELSE 0 END) "
        f"FROM center_events e {plan_join('e.occurred_date', 'e.merchant_id')} "
        f"WHERE e.occurred_date BETWEEN :first AND :last {merchant}"
        "AND e.status IN ('settled', 'reversed', 'voided', 'refund', 'frozen') "
        "GROUP BY e.merchant_id, e.occurred_date, e.currency "
        "ORDER BY e.merchant_id, e.occurred_date, e.currency")


def owed_days(conn: Connection, calendar: WorkingCalendar, value_days: int,
              first: date, last: date, merchant_id: str | None = None) -> list[OwedDay]:
    """Every merchant-day with money events from `first` to `last` (inclusive)."""
    params = {"first": first.isoformat(), "last": last.isoformat(),
              "undo_last": (last + timedelta(days=UNDO_LAG_DAYS)).isoformat()}
    if merchant_id is not None:
        params["merchant"] = merchant_id
    sql = owed_sql(conn.dialect.name, one_merchant=merchant_id is not None)
    days = []
    for merchant, day, currency, sales, gross, returns, held, fee in conn.execute(
            text(sql), params):
        business_date = date.fromisoformat(day)
        days.append(OwedDay(merchant, business_date, currency, int(sales or 0), int(gross or 0),
                            int(returns or 0), int(held or 0), int(fee or 0),
                            calendar.add_working_days(business_date, value_days)))
    return days
