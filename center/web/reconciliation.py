"""Batches that did not reconcile, and their differences in words.

A gateway compares each closed batch's totals, as the terminal counted them
(its 0500), with its own ledger, and sends the report to the center
(reconciliation.v1, stored in center_reconciliations). Per kind of
transaction the report says how many the terminal counted beyond the ledger
(`missing_at_gateway`: they never reached the gateway, so neither the
center), how many the ledger holds beyond the terminal's count
(`missing_at_terminal`), and the amount difference, terminal minus ledger.

The report carries no currency: amounts are shown in the currency of the
terminal's events at the center (a terminal trades in one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

#: Reports a page lists at most, newest first.
MAX_LISTED = 200
#: reconciliation.v1's kinds of transaction, as the staff name them (msgids).
KIND_NAMES = {"debits": "sales", "credits": "refunds", "debit_reversals": "sale reversals",
              "credit_reversals": "refund reversals"}
#: The sentences (msgids: translated; the placeholders survive translation).
MISSING_AT_CENTER = "{kind} counted by the terminal but missing at the center: {count}"
MISSING_AT_TERMINAL = "{kind} at the center that the terminal did not count: {count}"
TERMINAL_MORE = "{kind}: the terminal's total exceeds the center's by {amount}"
TERMINAL_LESS = "{kind}: the terminal's total falls short of the center's by {amount}"
WORDING = (MISSING_AT_CENTER, MISSING_AT_TERMINAL, TERMINAL_MORE, TERMINAL_LESS,
           *KIND_NAMES.values())


@dataclass(frozen=True, slots=True)
class Mismatch:
    day: str  # the UTC day the batch closed
    branch_id: str
    terminal_id: str
    gateway_id: str
    batch_closed_at: str
    event_id: str
    differences: list[str]  # in words, in the reader's language


def differences_in_words(report: Mapping[str, Any], currency: str | None,
                         gettext: Callable[[str], str],
                         money: Callable[[int, str], str]) -> list[str]:
    """One sentence per kind and difference, in reconciliation.v1's kind order."""
    sentences: list[str] = []
    for key, name in KIND_NAMES.items():
        kind = gettext(name)
        if count := _number(report.get("missing_at_gateway"), key):
            sentences.append(gettext(MISSING_AT_CENTER).format(kind=kind, count=count))
        if count := _number(report.get("missing_at_terminal"), key):
            sentences.append(gettext(MISSING_AT_TERMINAL).format(kind=kind, count=count))
        if amount := _number(report.get("amount_differences"), key):
            shown = money(abs(amount), currency) if currency else f"{abs(amount)}"
            wording = TERMINAL_MORE if amount > 0 else TERMINAL_LESS
            sentences.append(gettext(wording).format(kind=kind, amount=shown))
    return sentences


def _number(values: Any, key: str) -> int:
    if not isinstance(values, Mapping):
        return 0
    value = values.get(key, 0)
    return value if isinstance(value, int) else 0


def mismatches(engine: Engine, day: date | None, branch: str,
               gettext: Callable[[str], str],
               money: Callable[[int, str], str]) -> list[Mismatch]:
    """The mismatched reports, newest first; of one UTC day and one branch
    when given. Reads the (outcome, batch_closed_at) index."""
    where: list[str] = ["outcome = 'mismatched'"]
    params: dict[str, Any] = {"n": MAX_LISTED}
    if day is not None:
        where.append("batch_closed_at >= :start AND batch_closed_at < :end")
        params |= {"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()}
    if branch:
        where.append("branch_id = :branch")
        params["branch"] = branch
    with engine.connect() as conn:
        rows = list(conn.execute(text(
            "SELECT event_id, branch_id, gateway_id, terminal_id, batch_closed_at, payload "
            f"FROM center_reconciliations WHERE {' AND '.join(where)} "
            "ORDER BY batch_closed_at DESC, branch_id, terminal_id LIMIT :n"), params))
        currencies = _currencies(conn, {(str(row[1]), str(row[3])) for row in rows})
    return [Mismatch(str(closed)[:10], str(branch_id), str(terminal), str(gateway),
                     str(closed), str(event_id),
                     differences_in_words(_payload(payload),
                                          currencies.get((str(branch_id), str(terminal))),
                                          gettext, money))
            for event_id, branch_id, gateway, terminal, closed, payload in rows]


def _payload(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):  # SQLite's JSON column through text(): the JSON text
        value = json.loads(value)
    return value if isinstance(value, Mapping) else {}


def _currencies(conn: Connection, terminals: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The currency of each terminal's events: one indexed row each
    ((terminal_id, stan) leads with the terminal)."""
    found: dict[tuple[str, str], str] = {}
    for branch, terminal in terminals:
        currency = conn.execute(text("SELECT currency FROM center_events WHERE terminal_id = :t "
                                     "AND branch_id = :b LIMIT 1"),
                                {"t": terminal, "b": branch}).scalar()
        if currency:
            found[(branch, terminal)] = str(currency)
    return found
