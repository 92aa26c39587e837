"""What bench/console_search.py searches for: forms made from stored events
picked at random (as a customer describes a payment that did arrive), each
with its bare baseline, the same lookup as one hand-written SQL statement.

The baselines mirror center/queries.py: the same filters, order and limit,
so both return the same rows (the bench checks the counts agree).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

#: A customer's "about 250,000" and "Tuesday or so": the tolerances typed.
AMOUNT_TOLERANCE_MAJOR = {"VND": 5000, "USD": 1}
DAY_TOLERANCE = 1
_COLUMNS = "*"  # the console loads whole rows (the ORM's ReceivedEvent): so does the baseline
CARD = (f"SELECT {_COLUMNS} FROM center_events WHERE pan_last4 = %s "
        "AND amount_minor BETWEEN %s AND %s AND occurred_date BETWEEN %s AND %s "
        "ORDER BY occurred_at LIMIT 100")
RRN = f"SELECT {_COLUMNS} FROM center_events WHERE rrn = %s"
TERMINAL = (f"SELECT {_COLUMNS} FROM center_events WHERE terminal_id = %s AND stan = %s "
            "ORDER BY occurred_at")
MERCHANT = (f"SELECT {_COLUMNS} FROM center_events WHERE occurred_date = %s "
            "AND merchant_id = %s ORDER BY occurred_at DESC LIMIT 200")
BRANCH = (f"SELECT {_COLUMNS} FROM center_events WHERE occurred_date = %s "
          "AND branch_id = %s ORDER BY occurred_at DESC LIMIT 200")


@dataclass(frozen=True, slots=True)
class Case:
    """One search: the console's form fields, and the baseline's SQL with its parameters."""

    fields: dict[str, str]
    sql: str
    params: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """A stored event, as much of it as a search needs."""

    pan_last4: str
    amount_minor: int
    currency: str
    occurred_date: str
    rrn: str
    terminal_id: str
    stan: str
    merchant_id: str
    branch_id: str


def samples(conn: psycopg.Connection[Any], count: int, rng: random.Random) -> list[Sample]:
    """`count` stored events picked at random (by id: the ingest numbers from 1)."""
    (top,) = conn.execute("SELECT max(id) FROM center_events").fetchone() or (0,)
    ids = rng.sample(range(1, int(top) + 1), count)
    rows = conn.execute(
        "SELECT pan_last4, amount_minor, currency, occurred_date, rrn, terminal_id, stan, "
        "merchant_id, branch_id FROM center_events WHERE id = ANY(%s)", (ids,)).fetchall()
    return [Sample(*row) for row in rows]


def search_cases(conn: psycopg.Connection[Any], per_kind: int,
                 rng: random.Random) -> dict[str, list[Case]]:
    picked = samples(conn, per_kind, rng)
    return {"card": [card_case(sample) for sample in picked],
            "rrn": [Case({"kind": "rrn", "rrn": s.rrn}, RRN, (s.rrn,)) for s in picked],
            "terminal": [Case({"kind": "terminal", "terminal": s.terminal_id, "stan": s.stan},
                              TERMINAL, (s.terminal_id, s.stan)) for s in picked],
            "merchant": [place_case(sample, by_merchant=True) for sample in picked],
            "branch": [place_case(sample, by_merchant=False) for sample in picked]}


def card_case(sample: Sample) -> Case:
    exponent = 0 if sample.currency == "VND" else 2
    tolerance = AMOUNT_TOLERANCE_MAJOR[sample.currency]
    amount = f"{sample.amount_minor / 10 ** exponent:.{exponent}f}"
    low = sample.amount_minor - tolerance * 10 ** exponent
    high = sample.amount_minor + tolerance * 10 ** exponent
    day = sample.occurred_date
    fields = {"kind": "card", "last4": sample.pan_last4, "amount": amount,
              "currency": sample.currency, "amount_tolerance": str(tolerance),
              "day": day, "day_tolerance": str(DAY_TOLERANCE)}
    params = (sample.pan_last4, low, high, _shift(day, -DAY_TOLERANCE),
              _shift(day, DAY_TOLERANCE))
    return Case(fields, CARD, params)


def place_case(sample: Sample, *, by_merchant: bool) -> Case:
    if by_merchant:
        return Case({"kind": "place", "merchant": sample.merchant_id,
                     "day": sample.occurred_date}, MERCHANT,
                    (sample.occurred_date, sample.merchant_id))
    return Case({"kind": "place", "branch": sample.branch_id, "day": sample.occurred_date},
                BRANCH, (sample.occurred_date, sample.branch_id))


def _shift(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
