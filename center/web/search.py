"""The search form: "did it arrive?" four ways, and the card-number guard.

A customer on the phone may read out the whole card number and staff may
type it in. Any field holding 12 to 19 digits (spaces and dashes ignored)
is refused before anything else happens: it is not searched, stored,
logged, audited or shown back; the form comes back empty with a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision
from sqlmodel import Session

from posgw.center.models import ReceivedEvent
from posgw.center.queries import by_card_near, by_place, by_rrn, by_terminal_stan

#: A PAN is 12-19 digits (ISO/IEC 7812); typed with spaces or dashes too.
_CARD_NUMBER = re.compile(r"\d(?:[ \-]*\d){11,18}")
#: An RRN (ISO 8583 field 37) is 12 characters, often all digits: in the RRN
#: box only a longer run is taken for a card number.
_CARD_NUMBER_NOT_RRN = re.compile(r"\d(?:[ \-]*\d){12,18}")
#: A merchant id (ISO 8583 field 42, 15 characters) is often a letter and
#: 14 digits (M00000000000001): in the merchant box a run of digits glued
#: to a letter or digit before it is part of the id, not a card number.
_CARD_NUMBER_NOT_MERCHANT = re.compile(r"(?<![0-9A-Za-z])\d(?:[ \-]*\d){11,18}")
_FIELDS = ("kind", "last4", "amount", "currency", "amount_tolerance", "day",
           "day_tolerance", "rrn", "terminal", "stan", "merchant", "branch")
KINDS = ("card", "rrn", "terminal", "place")
#: A refused field is named to the user by its label (a msgid: translated).
FIELD_LABELS = {
    "kind": "Search", "last4": "Last 4 digits of the card", "amount": "Amount",
    "amount_tolerance": "Amount tolerance (±)", "day": "Day (YYYY-MM-DD, UTC)",
    "day_tolerance": "Day tolerance (± days)", "rrn": "RRN (retrieval reference)",
    "terminal": "Terminal id", "stan": "STAN (trace number)", "place": "By merchant or branch",
}
CARD_NUMBER = "card number"
MAX_DAY_TOLERANCE = 7


class SearchRefused(ValueError):
    """The form cannot be searched: `CARD_NUMBER`, or the label of the field
    to correct."""

    def __init__(self, field: str) -> None:
        super().__init__(FIELD_LABELS.get(field, field))


@dataclass(frozen=True, slots=True)
class SearchForm:
    """The fields as typed (all text), after the card-number guard."""

    fields: Mapping[str, str]

    def get(self, name: str) -> str:
        return self.fields.get(name, "").strip()


def holds_card_number(values: Mapping[str, str]) -> bool:
    return any(_card_number_in(name, value).search(value) for name, value in values.items())


def _card_number_in(name: str, value: str) -> re.Pattern[str]:
    if name == "rrn" and value.strip().isdigit():
        return _CARD_NUMBER_NOT_RRN
    return _CARD_NUMBER_NOT_MERCHANT if name == "merchant" else _CARD_NUMBER


def read_form(raw: Mapping[str, str]) -> SearchForm:
    """Only the known fields, and refused outright if any holds a PAN."""
    fields = {name: str(raw.get(name, ""))[:64] for name in _FIELDS}
    if holds_card_number(fields):
        raise SearchRefused(CARD_NUMBER)
    return SearchForm(fields)


def run_search(session: Session, form: SearchForm, today: date) -> list[ReceivedEvent]:
    kind = form.get("kind")
    if kind == "rrn":
        return by_rrn(session, _required(form, "rrn"))
    if kind == "terminal":
        return by_terminal_stan(session, _required(form, "terminal"), _required(form, "stan"))
    if kind == "place":
        day = _day(form, today)
        merchant, branch = form.get("merchant"), form.get("branch")
        if not merchant and not branch:
            raise SearchRefused("place")
        return by_place(session, merchant_id=merchant or None, branch_id=branch or None,
                        day=day)
    if kind == "card":
        return _by_card(session, form, today)
    raise SearchRefused("kind")


def _by_card(session: Session, form: SearchForm, today: date) -> list[ReceivedEvent]:
    last4 = form.get("last4")
    if len(last4) != 4 or not last4.isdigit():
        raise SearchRefused("last4")
    currency = form.get("currency").upper() or "VND"
    amount = _minor(form.get("amount"), currency, "amount")
    tolerance = _minor(form.get("amount_tolerance") or "0", currency, "amount_tolerance")
    day = _day(form, today)
    spread = _int(form.get("day_tolerance") or "0", "day_tolerance", 0, MAX_DAY_TOLERANCE)
    return by_card_near(session, last4, (amount - tolerance, amount + tolerance),
                        (day - timedelta(days=spread), day + timedelta(days=spread)))


def _minor(text: str, currency: str, field: str) -> int:
    """"12.50" EUR -> 1250; "125000" VND -> 125000 (no minor unit)."""
    try:
        exponent = get_currency_precision(currency)
        value = Decimal(text.replace(",", "")).scaleb(exponent)
    except (InvalidOperation, KeyError, ValueError):
        raise SearchRefused(field) from None
    if value != value.to_integral_value() or value < 0:
        raise SearchRefused(field)
    return int(value)


def _day(form: SearchForm, today: date) -> date:
    text = form.get("day")
    if not text:
        return today
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SearchRefused("day") from None


def _int(text: str, field: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise SearchRefused(field)
    return int(text)


def _required(form: SearchForm, field: str) -> str:
    value = form.get(field)
    if not value:
        raise SearchRefused(field)
    return value
