"""The merchant register and its settlement complaint cases, read by the
console (viewer and above; nothing here changes anything: the register is
kept with `posgw center merchants`, cases resolved with `posgw center
settlement resolve`).

The money owed per day comes from the settlement report's own functions
(owed.py through report.statement_day), so the page and the merchant's
statement carry the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col
from starlette.responses import Response

from posgw.center.settlement.cases import OPEN, case_id, is_overdue, list_cases
from posgw.center.settlement.fees import FeePlan, percent
from posgw.center.settlement.merchants import (
    MerchantView,
    RegisterError,
    list_merchants,
    plan_in_force,
    show_merchant,
)
from posgw.center.settlement.owed import owed_days
from posgw.center.settlement.report import statement_day
from posgw.center.settlement.tables import SettlementCase
from posgw.center.web.case_story import due_text
from posgw.center.web.fleet import is_identifier
from posgw.center.web.guard import PageCall, page
from posgw.center.web.i18n import Language

#: How far back the merchant page looks for days owed, and how many it shows.
OWED_LOOKBACK_DAYS = 62
MAX_OWED_DAYS = 14
#: A merchant page lists at most this many complaint cases (newest first).
MAX_CASES = 200
#: The register page lists at most this many merchants.
MAX_MERCHANTS = 2000
#: An evidence summary shows this many facts, each value cut to this length.
EVIDENCE_ITEMS, EVIDENCE_VALUE = 4, 40


@dataclass(frozen=True, slots=True)
class RegisterRow:
    merchant: MerchantView
    plan: FeePlan | None  # in force today
    open_cases: int


@dataclass(frozen=True, slots=True)
class CaseRow:
    case_id: str
    case: SettlementCase
    overdue: bool
    left: str
    evidence: str


@page("viewer")
def register(call: PageCall) -> Response:
    """Every merchant, or one branch's (`?branch=`)."""
    branch = call.request.query_params.get("branch", "").strip()[:32]
    if branch and not is_identifier(branch):
        return call.console.render(call.request, "merchants.html", call.user, rows=[],
                                   branch=branch, percent=percent, status_code=400)
    today = datetime.now(UTC).date()
    with Session(call.console.engine) as session:
        merchants = list_merchants(session, limit=MAX_MERCHANTS, branch_id=branch or None)
        counts = open_case_counts(session)
    rows = [RegisterRow(m, plan_in_force(m.plans, today), counts.get(m.merchant_id, 0))
            for m in merchants]
    return call.console.render(call.request, "merchants.html", call.user, rows=rows,
                               branch=branch, percent=percent)


@page("viewer")
def merchant_page(call: PageCall) -> Response:
    merchant_id = call.request.path_params["merchant_id"]
    console, now = call.console, datetime.now(UTC)
    if not is_identifier(merchant_id):
        return console.render(call.request, "not_found.html", call.user, status_code=404)
    with Session(console.engine) as session:
        try:
            merchant = show_merchant(session, merchant_id)
        except RegisterError:
            return console.render(call.request, "not_found.html", call.user, status_code=404)
        cases = list_cases(session, merchant_id=merchant_id, limit=MAX_CASES,
                           newest_first=True)
    lang = console.language_for(call.request, call.user)
    with console.engine.connect() as conn:
        owed = owed_days(conn, console.config.calendar, console.config.settlement.value_days,
                         now.date() - timedelta(days=OWED_LOOKBACK_DAYS), now.date(),
                         merchant_id)
    days = [(statement_day(day), day.currency) for day in owed[-MAX_OWED_DAYS:]]
    rows = [CaseRow(case_id(row.id or 0), row, is_overdue(row, now), time_left(row, now, lang),
                    evidence_summary(row.evidence, row.currency, lang))
            for row in cases]
    return console.render(call.request, "merchant.html", call.user, merchant=merchant,
                          in_force=plan_in_force(merchant.plans, now.date()),
                          days=list(reversed(days)), cases=rows, percent=percent)


def open_case_counts(session: Session) -> dict[str, int]:
    """Open settlement cases per merchant, counted by the database."""
    query = (select(col(SettlementCase.merchant_id), func.count())
             .where(col(SettlementCase.status) == OPEN)
             .group_by(col(SettlementCase.merchant_id)))
    return {merchant: int(count) for merchant, count in session.execute(query)}


def time_left(row: SettlementCase, now: datetime, lang: Language) -> str:
    """Time to the 24-hour first response, as the freeze case queue says it."""
    if row.status != OPEN:
        return ""
    due = row.first_response_due_at
    return due_text(due if due.tzinfo else due.replace(tzinfo=UTC), now, lang)  # SQLite: naive


def evidence_summary(evidence: dict[str, Any], currency: str, lang: Language) -> str:
    """A few facts of the finding ("rrn: 000000000017; fee: ₫80"), bounded;
    an amount in minor units (a key ending `_minor`) shown as money.
    Evidence holds references and amounts, never a card number."""
    facts = []
    for key, value in list(evidence.items())[:EVIDENCE_ITEMS]:
        if key.endswith("_minor") and isinstance(value, int) and not isinstance(value, bool):
            key, value = key.removesuffix("_minor"), lang.money(value, currency)
        facts.append(f"{key}: {str(value)[:EVIDENCE_VALUE]}")
    more = " …" if len(evidence) > EVIDENCE_ITEMS else ""
    return "; ".join(facts) + more
