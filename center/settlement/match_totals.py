"""Matching per merchant and business day: the fee charged, the money credited.

fee_above_plan: over the day's sale lines, what the acquirer deducted
above the plan's fee of each line (fees.py; a line charged below the plan
does not offset one charged above). The evidence tells a fixed charge per
transaction (every line over by the same amount) from a rate above the plan.

credit_missing / credit_short: the money expected on the merchant's account
is what the acquirer settled for the day (its lines' net), or, for a day
the acquirer did not report, the net owed by the plan (owed.py); so a fee
overcharge, a missing sale or a double settlement is found once, as
itself, not again as a short credit. It is due on the value date; a
finding once `as_of` is past the value date plus `credit_grace_days`
working days: missing when nothing arrived by then (a credit that came
later is in the evidence), short when less did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from posgw.center.calendar import WorkingCalendar
from posgw.center.settlement.cases import Finding
from posgw.center.settlement.ledger_sql import PLAN_PERIODS_CTE, plan_fee, plan_join
from posgw.center.settlement.owed import OwedDay


def fee_sql() -> str:
    return (
        f"WITH {PLAN_PERIODS_CTE}, priced AS (SELECT a.merchant_id, a.business_date, "
        f"a.currency, a.amount_minor, a.fee_minor, {plan_fee('a.amount_minor')} AS plan_fee "
        f"FROM settlement_acquirer_lines a {plan_join('a.business_date', 'a.merchant_id')} "
        "WHERE a.business_date BETWEEN :first AND :last AND a.amount_minor > 0) "
        "SELECT merchant_id, business_date, MIN(currency), COUNT(*), SUM(amount_minor), "
        "SUM(fee_minor), SUM(plan_fee), "
        "SUM(CASE WHEN fee_minor > plan_fee THEN fee_minor - plan_fee ELSE 0 END), "
        "SUM(CASE WHEN fee_minor > plan_fee THEN 1 ELSE 0 END), "
        "MIN(CASE WHEN fee_minor > plan_fee THEN fee_minor - plan_fee END), "
        "MAX(fee_minor - plan_fee) FROM priced GROUP BY merchant_id, business_date "
        "HAVING SUM(CASE WHEN fee_minor > plan_fee THEN fee_minor - plan_fee ELSE 0 END) > 0 "
        "ORDER BY merchant_id, business_date")


def fee_findings(conn: Connection, first: date, last: date) -> list[Finding]:
    findings = []
    for (merchant, day, currency, lines, gross, charged, planned, excess, over, least,
         most) in conn.execute(text(fee_sql()), {"first": first.isoformat(),
                                                 "last": last.isoformat()}):
        fixed = over == lines and least == most
        evidence = {"lines": int(lines), "lines_over_plan": int(over), "gross_minor": int(gross),
                    "fee_charged_minor": int(charged), "fee_by_plan_minor": int(planned),
                    "pattern": (f"a fixed charge of {least} per transaction" if fixed
                                else "a rate above the plan"),
                    "rate_charged": _rate(int(charged), int(gross)),
                    "rate_by_plan": _rate(int(planned), int(gross)),
                    "excess_per_line": [int(least), int(most)]}
        findings.append(Finding("fee_above_plan", f"fee_above_plan|{merchant}|{day}", merchant,
                                date.fromisoformat(day), int(excess), currency, evidence))
    return findings


def _rate(fee: int, gross: int) -> str:
    """The fee as a percentage of the gross, to 4 decimals (evidence only)."""
    if gross <= 0:
        return "n/a"
    return f"{(Decimal(fee) * 100 / gross).quantize(Decimal('0.0001'))} %"


@dataclass(frozen=True, slots=True)
class Expected:
    merchant_id: str
    business_date: date
    currency: str
    amount_minor: int
    basis: str  # "acquirer" (its lines' net) | "plan" (the owed net)


SETTLED_NET_SQL = (
    "SELECT merchant_id, business_date, MIN(currency), SUM(net_minor) "
    "FROM settlement_acquirer_lines WHERE business_date BETWEEN :first AND :last "
    "GROUP BY merchant_id, business_date")
CREDITS_SQL = (
    "SELECT merchant_id, business_date, value_date, amount_minor, entry_ref "
    "FROM settlement_bank_credits WHERE merchant_id IS NOT NULL "
    "AND (business_date BETWEEN :first AND :last "
    "OR (business_date IS NULL AND value_date >= :first))")


def expected_credits(conn: Connection, owed: Sequence[OwedDay], first: date,
                     last: date) -> list[Expected]:
    params = {"first": first.isoformat(), "last": last.isoformat()}
    expected: dict[tuple[str, date], Expected] = {}
    covered: set[date] = set()  # the days the acquirer's lines cover
    for merchant, day, currency, net in conn.execute(text(SETTLED_NET_SQL), params):
        key = (merchant, date.fromisoformat(day))
        covered.add(key[1])
        expected[key] = Expected(merchant, key[1], currency, int(net), "acquirer")
    for day in owed:
        if day.business_date not in covered:
            expected[(day.merchant_id, day.business_date)] = Expected(
                day.merchant_id, day.business_date, day.currency, day.net_minor, "plan")
    return [expected[key] for key in sorted(expected)]


def credit_findings(conn: Connection, owed: Sequence[OwedDay], first: date, last: date, *,
                    calendar: WorkingCalendar, value_days: int, grace_days: int,
                    as_of: date) -> list[Finding]:
    credits = _credits_by_day(conn, first, last, calendar, value_days)
    findings = []
    for want in expected_credits(conn, owed, first, last):
        if want.amount_minor <= 0:
            continue
        due = calendar.add_working_days(want.business_date, value_days)
        deadline = calendar.add_working_days(due, grace_days)
        arrived = credits.get((want.merchant_id, want.business_date), [])
        in_time = sum(amount for value_date, amount, _ in arrived if value_date <= deadline)
        if in_time >= want.amount_minor or as_of <= deadline:
            continue
        evidence = {"expected_minor": want.amount_minor, "expected_by": want.basis,
                    "value_date": due.isoformat(), "deadline": deadline.isoformat(),
                    "credited_by_deadline_minor": in_time,
                    "credits": [{"value_date": value_date.isoformat(), "amount_minor": amount,
                                 "entry_ref": ref} for value_date, amount, ref in arrived]}
        kind = "credit_missing" if in_time == 0 else "credit_short"
        findings.append(Finding(kind, f"credit|{want.merchant_id}|{want.business_date}",
                                want.merchant_id, want.business_date,
                                want.amount_minor - in_time, want.currency, evidence))
    return findings


def _credits_by_day(conn: Connection, first: date, last: date, calendar: WorkingCalendar,
                    value_days: int) -> dict[tuple[str, date], list[tuple[date, int, str]]]:
    """Each credit under the merchant-day it pays: the day its reference
    names, else the day whose due value date is the credit's value date."""
    by_day: dict[tuple[str, date], list[tuple[date, int, str]]] = {}
    params = {"first": first.isoformat(), "last": last.isoformat()}
    for merchant, day, value_day, amount, ref in conn.execute(text(CREDITS_SQL), params):
        value_date = date.fromisoformat(value_day)
        paid_day = date.fromisoformat(day) if day else _day_due_on(value_date, calendar,
                                                                   value_days)
        if paid_day is None or not first <= paid_day <= last:
            continue
        by_day.setdefault((merchant, paid_day), []).append((value_date, int(amount), ref))
    return by_day


def _day_due_on(value_date: date, calendar: WorkingCalendar, value_days: int) -> date | None:
    """The latest business day whose net is due on `value_date`."""
    for back in range(0, 15):
        day = date.fromordinal(value_date.toordinal() - back)
        if calendar.add_working_days(day, value_days) == value_date:
            return day
    return None
