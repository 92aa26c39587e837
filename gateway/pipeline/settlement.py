"""Batch settlement (0500): the terminal's totals against the ledger's.

The terminal sends its batch totals (protocols/normalize/batch.py). The
gateway counts the same from the ledger rows of that terminal since its
batch opened:

- debits: approved purchases, pre-authorizations, completions (settled or
  frozen: a freeze holds the funds, the sale still happened);
- credits: approved refunds;
- debit reversals: approved voids;
- a purchase undone by a reversal (0400, a sale the terminal never saw
  approved) counts on neither side, and neither does the reversal.

Equal money totals: 00 and the batch closes. Different: 95 (reconcile
error), the batch closes all the same (the terminal starts a new one either
way), and the Reconciliation row keeps both sets of totals and the
differences, for `posgw status` and the people who must chase them.
Balance inquiries (field 80) are not money and are not compared.

Every closed batch is also reported to the center: a `reconciliation.v1`
event on `{prefix}/{branch}/{terminal}/reconciliation`, committed with the
Reconciliation row (so one never exists without the other). It names, per
kind of transaction, how many the terminal counted that the ledger lacks
(missing at the gateway), how many the ledger holds that the terminal did
not count (missing at the terminal), and the amount differences. A 0500
carries totals, not transactions: which ones are missing is for the people
who compare the terminal's journal with `posgw center query`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from posgw.drivers.clock import Clock
from posgw.gateway.forward.events import new_event_id, outbox_row
from posgw.gateway.identity import GatewayIdentity
from posgw.gateway.store.models import Reconciliation
from posgw.gateway.store.rows import TableRow, table_row
from posgw.gateway.store.store import BatchRow
from posgw.protocols.contract import (
    FROZEN,
    REFUND,
    REVERSED,
    SETTLED,
    VOIDED,
    reconciliation_event,
    reconciliation_topic,
    utc_iso,
)
from posgw.protocols.normalize.batch import BatchTotals

DEBIT_KINDS = frozenset({"purchase", "preauth", "completion"})
#: The kinds of transaction a batch counts (each with a `_amount` total).
TRANSACTION_CLASSES = ("debits", "credits", "debit_reversals", "credit_reversals")


def ledger_totals(rows: Iterable[BatchRow]) -> BatchTotals:
    rows = list(rows)
    reversed_ids = {row.original_event_id for row in rows
                    if row.kind == "reversal" and row.status == REVERSED}
    counts: dict[str, int] = {}
    for row in rows:
        if row.event_id in reversed_ids:
            continue
        if row.kind in DEBIT_KINDS and row.status in (SETTLED, FROZEN):
            _add(counts, "debits", row.amount_minor)
        elif row.kind == "refund" and row.status == REFUND:
            _add(counts, "credits", row.amount_minor)
        elif row.kind == "void" and row.status == VOIDED:
            _add(counts, "debit_reversals", row.amount_minor)
    return BatchTotals(**counts)


def _add(counts: dict[str, int], name: str, amount: int) -> None:
    counts[name] = counts.get(name, 0) + 1
    counts[f"{name}_amount"] = counts.get(f"{name}_amount", 0) + amount


def settlement_rows(terminal_id: str, theirs: BatchTotals, ours: BatchTotals, *,
                    opened_at: datetime | None, closed_at: datetime,
                    identity: GatewayIdentity, clock: Clock) -> tuple[TableRow, TableRow]:
    """The Reconciliation row and its report event, for one commit.

    Commit the event as an extra row, not as the request's outbox row: the
    outbox cap refuses new sales, never the close of a batch.
    """
    differences = theirs.money_differences(ours)
    event_id = new_event_id()
    row = table_row(Reconciliation, terminal_id=terminal_id, opened_at=opened_at,
                    closed_at=closed_at, outcome="mismatched" if differences else "matched",
                    terminal_totals=theirs.as_dict(), ledger_totals=ours.as_dict(),
                    differences=differences, report_event_id=event_id)
    report = {"outcome": row.values["outcome"],
              "batch_opened_at": utc_iso(opened_at) if opened_at is not None else None,
              "batch_closed_at": utc_iso(closed_at),
              "terminal_totals": theirs.as_dict(), "ledger_totals": ours.as_dict(),
              "differences": differences, **discrepancies(differences)}
    payload = reconciliation_event(terminal_id, report, event_id=event_id,
                                   branch_id=identity.branch_id,
                                   gateway_id=identity.gateway_id, occurred_at=closed_at)
    topic = reconciliation_topic(identity.topic_prefix, identity.branch_id, terminal_id)
    return row, outbox_row(payload, topic=topic, clock=clock, terminal_id=terminal_id)


def discrepancies(differences: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, Any]]:
    """A Reconciliation's `differences` in the words of the people who chase them:
    per kind of transaction, how many are missing at the gateway (the terminal
    counted more) or at the terminal (the ledger holds more), and the amount
    difference, terminal minus ledger, in minor units."""
    at_gateway: dict[str, int] = {}
    at_terminal: dict[str, int] = {}
    amounts: dict[str, int] = {}
    for name in TRANSACTION_CLASSES:
        count = differences.get(name)
        if count is not None:
            delta = int(count["terminal"]) - int(count["ledger"])
            (at_gateway if delta > 0 else at_terminal)[name] = abs(delta)
        amount = differences.get(f"{name}_amount")
        if amount is not None:
            amounts[name] = int(amount["terminal"]) - int(amount["ledger"])
    return {"missing_at_gateway": at_gateway, "missing_at_terminal": at_terminal,
            "amount_differences": amounts}
