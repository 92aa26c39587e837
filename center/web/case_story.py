"""A freeze case in words: its status, the time left to its first response,
and what to tell the customer, with the dates promised (counted in working
days, `[calendar]`, from `[cases] reclear_working_days` and
`return_working_days`)."""

from __future__ import annotations

from datetime import date, datetime

from babel.dates import format_date

from posgw.center.calendar import WorkingCalendar
from posgw.center.case_models import CenterCase
from posgw.center.case_state import UNRESOLVED, parse_time
from posgw.center.config import CasesConfig
from posgw.center.web.i18n import Language

#: A case's status as the desk reads it (msgids: translated).
STATUS_LABELS = {"open": "Open: not answered yet", "evidence_submitted": "Evidence submitted",
                 "released": "Released", "returned": "Returned to the card",
                 "expired": "Expired: returned to the card"}
#: A command the console sent, as the desk reads it (msgids: translated).
COMMAND_LABELS = {"release": "Release", "return_to_card": "Return to card", "expire": "Expire",
                  "submit_evidence": "Upload evidence"}
RETURNED = ("returned", "expired")


def status_label(status: str, lang: Language) -> str:
    return lang.gettext(STATUS_LABELS.get(status, status))


def is_overdue(found: CenterCase, now: datetime) -> bool:
    """Still open (no evidence, no decision) past its first-response due time."""
    due = found.first_response_due_at
    return found.status == "open" and (found.overdue or (due is not None
                                                         and parse_time(due) <= now))


def time_left(found: CenterCase, now: datetime, lang: Language) -> str:
    """"5 h 20 min left", "overdue by 2 h 5 min", or "" once answered."""
    _ = lang.gettext
    if found.status not in UNRESOLVED or found.first_response_due_at is None:
        return ""
    if found.status != "open":
        return _("Answered: evidence submitted")
    return due_text(parse_time(found.first_response_due_at), now, lang,
                    overdue=found.overdue)


def due_text(due: datetime, now: datetime, lang: Language, *, overdue: bool = False) -> str:
    """"5 h 20 min left" to `due`, or "Overdue by 2 h 5 min" past it (or when
    the branch already said so: `overdue`)."""
    _ = lang.gettext
    seconds = int((due - now).total_seconds())
    hours, minutes = divmod(abs(seconds) // 60, 60)
    if seconds < 0 or overdue:
        return _("Overdue by {hours} h {minutes} min").format(hours=hours, minutes=minutes)
    return _("{hours} h {minutes} min left").format(hours=hours, minutes=minutes)


def promised_date(calendar: WorkingCalendar, start: date, working_days: int) -> date:
    return calendar.add_working_days(start, working_days)


def customer_answer(found: CenterCase, cases: CasesConfig, calendar: WorkingCalendar,
                    today: date, lang: Language) -> str:
    """What to tell the customer, in plain words, with the dates promised."""
    _ = lang.gettext

    def day(value: date) -> str:
        return format_date(value, "long", locale=lang.locale)

    decided = parse_time(found.updated_at).date()
    if found.status == "released":
        return _("The payment was released on {day}: it is re-cleared to the merchant's "
                 "account by {promised} ({days} working days).").format(
            day=day(decided), days=cases.reclear_working_days,
            promised=day(promised_date(calendar, decided, cases.reclear_working_days)))
    if found.status in RETURNED:
        return _("The money was returned to the card on {day}: the card issuer credits it "
                 "by {promised} (about {days} working days).").format(
            day=day(decided), days=cases.return_working_days,
            promised=day(promised_date(calendar, decided, cases.return_working_days)))
    due = (lang.moment(parse_time(found.first_response_due_at))
           if found.first_response_due_at else "?")
    return _("The money is held by the risk rules ({rule}) while the case is reviewed; a "
             "first answer is due by {due}. If it is released today, the merchant is paid "
             "by {reclear}; if it is returned to the card today, the card issuer credits it "
             "by {returned}.").format(
        rule=found.rule, due=due,
        reclear=day(promised_date(calendar, today, cases.reclear_working_days)),
        returned=day(promised_date(calendar, today, cases.return_working_days)))
