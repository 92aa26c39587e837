"""SQL pieces over `center_events` that the owed sums and matching share.

Written as SQL text: the same text runs on SQLite and PostgreSQL except
for reading a JSON field, which `original_id` spells per dialect. Every
piece reads one date window, so PostgreSQL prunes to that month's
partitions.

What an event means for the money (DESIGN: a reversal, void or refund is
its own event with its own positive amount):

- `settled`: a sale paid to the merchant, including a released freeze
  (re-cleared: a new `settled` event on the release day, naming the frozen
  one as `original_event_id`); **undone** when a `reversed` or `voided`
  event names it, or carries its terminal and RRN;
- `refund`: money back to a card: a merchant's return, unless it names a
  `frozen` event (a freeze returned to the card: that money was held,
  never paid, so it is no return of the merchant's);
- `frozen`: held, owed to nobody until released.
"""

from __future__ import annotations

from posgw.center.settlement.fees import DEFAULT_RATE_PPM, fee_sql


def original_id(dialect: str, table: str = "e") -> str:
    """The event's `original_event_id` (NULL when absent)."""
    if dialect == "postgresql":
        return f"({table}.payload->>'original_event_id')"
    return f"json_extract({table}.payload, '$.original_event_id')"


def undo_keys_cte(dialect: str, start: str = ":first") -> str:
    """`undone_ids` and `undone_rrns`: what the window's reversals and voids
    name (a reversal may come a day after its sale: the window runs from
    `start` to :undo_last)."""
    return (
        "undone_ids AS (SELECT " + original_id(dialect, "u") + " AS event_id "
        f"FROM center_events u WHERE u.occurred_date BETWEEN {start} AND :undo_last "
        "AND u.status IN ('reversed', 'voided') "
        "AND " + original_id(dialect, "u") + " IS NOT NULL), "
        "undone_rrns AS (SELECT u.terminal_id, u.rrn FROM center_events u "
        f"WHERE u.occurred_date BETWEEN {start} AND :undo_last "
        "AND u.status IN ('reversed', 'voided') AND u.rrn IS NOT NULL)")


def is_undone(table: str = "e") -> str:
    # Uncorrelated INs: each set is made once, then probed per row (a
    # correlated EXISTS made SQLite scan the window again for every event).
    return (f"({table}.event_id IN (SELECT event_id FROM undone_ids) OR "
            f"({table}.terminal_id, {table}.rrn) IN (SELECT terminal_id, rrn FROM undone_rrns))")


def is_return_to_card(dialect: str, table: str = "e") -> str:
    return (f"EXISTS (SELECT 1 FROM center_events f WHERE f.event_id = "
            f"{original_id(dialect, table)} AND f.status = 'frozen')")


def merchant_return(dialect: str, table: str = "e") -> str:
    """The event gives a merchant's money back (a reversal, void or refund
    that is not a freeze returned to the card)."""
    return (f"({table}.status IN ('reversed', 'voided') OR ({table}.status = 'refund' "
            f"AND NOT {is_return_to_card(dialect, table)}))")


#: Each merchant's plans with the day the next one starts (NULL: in force still).
PLAN_PERIODS_CTE = (
    "plan_periods AS (SELECT merchant_id, effective_from AS from_day, "
    "LEAD(effective_from) OVER (PARTITION BY merchant_id ORDER BY effective_from) AS to_day, "
    "rate_ppm, fixed_minor, minimum_minor, cap_minor FROM settlement_fee_plans)")


def plan_join(day_column: str, merchant_column: str) -> str:
    """LEFT JOIN of the plan in force on `day_column` for `merchant_column`."""
    return (f"LEFT JOIN plan_periods p ON p.merchant_id = {merchant_column} "
            f"AND {day_column} >= p.from_day AND (p.to_day IS NULL OR {day_column} < p.to_day)")


def plan_fee(amount: str) -> str:
    """The plan's fee of `amount`; without a plan (a merchant not in the
    register, or a day before its first plan), the standard plan's."""
    return fee_sql(amount, f"COALESCE(p.rate_ppm, {DEFAULT_RATE_PPM})",
                   "COALESCE(p.fixed_minor, 0)", "p.minimum_minor", "p.cap_minor")
