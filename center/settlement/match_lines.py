"""Matching per transaction: the acquirer's lines against the center's events.

A line and an event are the same transaction when they share the terminal,
the RRN (or, when either has none, the STAN on that day) and the signed
amount (a refund is a negative line). Each event's standing for the money:

    1 owed    a sale not undone, or a merchant's refund
    2 held    frozen (or a freeze returned to the card): not the acquirer's to pay
    3 failed  declined, or a sale reversed or voided

Findings, each with its amount and evidence:

- unknown: lines that match no event at all;
- failed_but_charged: lines whose best match has standing 3;
- charged_twice: a transaction settled n > 1 times (amount: the n-1 extra);
- missing_from_settlement: an owed event on a day the acquirer reported,
  with no line.

The database does the joins; only the findings come back to Python, so a
clean month of millions of lines returns nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from posgw.center.settlement.cases import Finding
from posgw.center.settlement.ledger_sql import is_return_to_card, is_undone, undo_keys_cte

#: Events are looked for this many days around the lines' business days
#: (a sale just before midnight UTC settled on the next day).
WINDOW_DAYS = 1
OWED, HELD, FAILED = 1, 2, 3


def ledger_cte(dialect: str) -> str:
    standing = (f"CASE WHEN e.status = 'settled' AND NOT {is_undone()} THEN {OWED} "
                f"WHEN e.status = 'refund' AND NOT {is_return_to_card(dialect)} THEN {OWED} "
                f"WHEN e.status IN ('frozen', 'refund') THEN {HELD} ELSE {FAILED} END")
    return (
        f"{undo_keys_cte(dialect, ':wfirst')}, ledger AS (SELECT e.event_id, e.merchant_id, "
        "e.terminal_id, e.occurred_date, e.currency, e.status, e.rrn, e.stan, "
        "COALESCE(NULLIF(e.rrn, ''), 'S' || e.stan || e.occurred_date) AS mkey, "
        "CASE WHEN e.status = 'refund' THEN -e.amount_minor ELSE e.amount_minor END AS signed, "
        f"{standing} AS standing FROM center_events e "
        "WHERE e.occurred_date BETWEEN :wfirst AND :wlast "
        "AND e.status IN ('settled', 'refund', 'frozen', 'declined'))")


LINES_CTE = (
    "lines AS (SELECT a.terminal_id, a.merchant_id, a.business_date, a.currency, a.rrn, "
    "a.stan, a.amount_minor AS signed, "
    "CASE WHEN a.rrn <> '' THEN a.rrn ELSE 'S' || a.stan || a.business_date END AS mkey "
    "FROM settlement_acquirer_lines a WHERE a.business_date BETWEEN :wfirst AND :wlast)")


def line_findings_sql(dialect: str) -> str:
    return (
        f"WITH {ledger_cte(dialect)}, {LINES_CTE}, "
        "grouped AS (SELECT terminal_id, mkey, signed, COUNT(*) AS n, "
        "MIN(merchant_id) AS merchant_id, MIN(business_date) AS business_date, "
        "MIN(currency) AS currency, MIN(rrn) AS rrn, MIN(stan) AS stan FROM lines "
        "WHERE business_date BETWEEN :first AND :last GROUP BY terminal_id, mkey, signed), "
        "known AS (SELECT terminal_id, mkey, signed, MIN(standing) AS standing, "
        "MIN(event_id) AS event_id, MIN(status) AS status FROM ledger "
        "GROUP BY terminal_id, mkey, signed) "
        "SELECT g.terminal_id, g.mkey, g.signed, g.n, g.merchant_id, g.business_date, "
        "g.currency, g.rrn, g.stan, k.standing, k.event_id, k.status "
        "FROM grouped g LEFT JOIN known k ON k.terminal_id = g.terminal_id "
        "AND k.mkey = g.mkey AND k.signed = g.signed "
        f"WHERE k.standing IS NULL OR k.standing = {FAILED} OR g.n > 1 "
        "ORDER BY g.business_date, g.terminal_id, g.mkey")


def missing_sql(dialect: str) -> str:
    return (
        f"WITH {ledger_cte(dialect)}, {LINES_CTE} "
        "SELECT l.event_id, l.merchant_id, l.terminal_id, l.mkey, l.signed, l.occurred_date, "
        "l.currency, l.rrn, l.stan FROM ledger l "
        # An anti-join, which both databases hash (or index): a NOT IN over a
        # day's lines was planned as a rescan per event once past work_mem.
        "LEFT JOIN (SELECT DISTINCT terminal_id, mkey, signed FROM lines) x "
        "ON x.terminal_id = l.terminal_id AND x.mkey = l.mkey AND x.signed = l.signed "
        f"WHERE x.terminal_id IS NULL AND l.standing = {OWED} "
        "AND l.occurred_date BETWEEN :first AND :last "
        "AND l.occurred_date IN (SELECT DISTINCT business_date FROM lines) "
        "ORDER BY l.occurred_date, l.terminal_id, l.mkey")


def window(first: date, last: date) -> dict[str, str]:
    return {"first": first.isoformat(), "last": last.isoformat(),
            "wfirst": (first - timedelta(days=WINDOW_DAYS)).isoformat(),
            "wlast": (last + timedelta(days=WINDOW_DAYS)).isoformat(),
            "undo_last": (last + timedelta(days=WINDOW_DAYS + 1)).isoformat()}


def line_findings(conn: Connection, first: date, last: date) -> list[Finding]:
    """unknown, failed_but_charged and charged_twice for lines of `first`..`last`."""
    findings = []
    for (terminal, mkey, signed, n, merchant, day, currency, rrn, stan, standing, event_id,
         status) in conn.execute(text(line_findings_sql(conn.dialect.name)), window(first, last)):
        evidence = {"terminal_id": terminal, "rrn": rrn, "stan": stan, "amount_minor": signed,
                    "lines": n, "event_id": event_id, "event_status": status}
        subject = f"{terminal}|{mkey}|{signed}"
        if standing is None:
            kind, amount = "unknown", n * abs(signed)
        elif standing == FAILED:
            kind, amount = "failed_but_charged", n * abs(signed)
        else:
            kind, amount = "charged_twice", (n - 1) * abs(signed)
        findings.append(Finding(kind, f"{kind}|{subject}", merchant, date.fromisoformat(day),
                                amount, currency, evidence))
    return findings


def missing_findings(conn: Connection, first: date, last: date) -> list[Finding]:
    """missing_from_settlement for owed events of days the acquirer reported."""
    findings = []
    for (event_id, merchant, terminal, _mkey, signed, day, currency, rrn,
         stan) in conn.execute(text(missing_sql(conn.dialect.name)), window(first, last)):
        evidence = {"event_id": event_id, "terminal_id": terminal, "rrn": rrn, "stan": stan,
                    "amount_minor": signed}
        findings.append(Finding("missing_from_settlement", f"missing_from_settlement|{event_id}",
                                merchant, date.fromisoformat(day), abs(signed), currency,
                                evidence))
    return findings
