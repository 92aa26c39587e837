"""A merchant's day (`settlement report`) and month (`settlement statement`).

Both are built from the same pieces, owed.py for the money by the plan and
the tables for credits and cases, so the JSON of a month and its PDF carry
the same numbers (`statement_json` is the PDF's `MonthlyStatement` as JSON).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from posgw.center.calendar import WorkingCalendar
from posgw.center.config import SettlementConfig
from posgw.center.settlement.cases import case_id, list_cases
from posgw.center.settlement.merchants import (
    RegisterError,
    plan_in_force,
    show_merchant,
)
from posgw.center.settlement.owed import OwedDay, owed_days
from posgw.center.settlement.records import (
    MonthlyStatement,
    StatementCredit,
    StatementDay,
    StatementFinding,
)
from posgw.center.settlement.tables import BankCreditRow

ACQUIRER_DAY_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(amount_minor), 0), COALESCE(SUM(fee_minor), 0), "
    "COALESCE(SUM(net_minor), 0) FROM settlement_acquirer_lines "
    "WHERE merchant_id = :merchant AND business_date = :day")


def month_bounds(month: str) -> tuple[date, date]:
    """"2026-03" -> (2026-03-01, 2026-03-31); ValueError for anything else."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ValueError(f"a month as YYYY-MM; got {month!r}") from None
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def statement_day(day: OwedDay) -> StatementDay:
    return StatementDay(day.business_date, day.gross_minor, day.returns_minor, day.held_minor,
                        day.fee_minor, day.net_minor, day.value_date)


def monthly_statement(engine: Engine, merchant_id: str, month: str, *,
                      calendar: WorkingCalendar, settlement: SettlementConfig
                      ) -> MonthlyStatement:
    """Everything the merchant's monthly PDF shows. RegisterError for a
    merchant not in the register (the statement needs its name and account)."""
    first, last = month_bounds(month)
    with Session(engine) as session:
        merchant = show_merchant(session, merchant_id)
        plan = plan_in_force(merchant.plans, last)
        credits = session.scalars(select(BankCreditRow).where(
            col(BankCreditRow.merchant_id) == merchant_id,
            col(BankCreditRow.value_date).between(first.isoformat(), last.isoformat()))
            .order_by(col(BankCreditRow.value_date), col(BankCreditRow.id))).all()
        cases = list_cases(session, merchant_id=merchant_id, first=first, last=last)
    with engine.connect() as conn:
        days = owed_days(conn, calendar, settlement.value_days, first, last, merchant_id)
    return MonthlyStatement(
        merchant_id=merchant.merchant_id, merchant_name=merchant.name,
        account_masked=merchant.account_masked, month=month, currency=merchant.currency,
        plan=plan.in_words() if plan else "no plan in force",
        days=tuple(statement_day(day) for day in days if day.currency == merchant.currency),
        credits=tuple(StatementCredit(date.fromisoformat(row.value_date), row.amount_minor,
                                      row.reference) for row in credits),
        findings=tuple(StatementFinding(case_id(row.id or 0), row.kind,
                                        date.fromisoformat(row.business_date),
                                        row.amount_minor, row.status) for row in cases))


def statement_json(statement: MonthlyStatement) -> dict[str, Any]:
    """The statement with its totals, dates as ISO text."""
    body: dict[str, Any] = _iso(asdict(statement))
    body["totals"] = {"gross_minor": statement.gross_minor,
                      "returns_minor": statement.returns_minor,
                      "fee_minor": statement.fee_minor, "net_minor": statement.net_minor,
                      "credited_minor": statement.credited_minor}
    return body


def day_report(engine: Engine, merchant_id: str, day: date, *, calendar: WorkingCalendar,
               settlement: SettlementConfig) -> dict[str, Any]:
    """One merchant's business day: owed by the plan, settled by the
    acquirer, credited by the bank, and the cases found."""
    with engine.connect() as conn:
        owed = owed_days(conn, calendar, settlement.value_days, day, day, merchant_id)
        lines, amount, fee, net = conn.execute(text(ACQUIRER_DAY_SQL),
                                               {"merchant": merchant_id,
                                                "day": day.isoformat()}).one()
    with Session(engine) as session:
        try:
            merchant: dict[str, Any] | None = _iso(asdict(show_merchant(session, merchant_id)))
        except RegisterError:
            merchant = None
        credits = session.scalars(select(BankCreditRow).where(
            col(BankCreditRow.merchant_id) == merchant_id,
            col(BankCreditRow.business_date) == day.isoformat())).all()
        cases = list_cases(session, merchant_id=merchant_id, first=day, last=day)
    return {
        "merchant_id": merchant_id, "business_date": day.isoformat(), "merchant": merchant,
        "owed": [_iso({**asdict(statement_day(o)), "currency": o.currency, "sales": o.sales})
                 for o in owed],
        "acquirer": {"lines": int(lines), "amount_minor": int(amount), "fee_minor": int(fee),
                     "net_minor": int(net)},
        "credits": [{"entry_ref": row.entry_ref, "value_date": row.value_date,
                     "amount_minor": row.amount_minor, "reference": row.reference}
                    for row in credits],
        "findings": [{"case_id": case_id(row.id or 0), "kind": row.kind,
                      "amount_minor": row.amount_minor, "status": row.status,
                      "evidence": row.evidence} for row in cases],
    }


def _iso(value: Any) -> Any:
    """Dates (at any depth) as ISO text, tuples as lists: ready for json.dumps."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _iso(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_iso(item) for item in value]
    return value
