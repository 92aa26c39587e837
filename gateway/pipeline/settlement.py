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
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.store.store import BatchRow
from protocols.normalize.batch import BatchTotals

DEBIT_KINDS = frozenset({"purchase", "preauth", "completion"})


def ledger_totals(rows: Iterable[BatchRow]) -> BatchTotals:
    rows = list(rows)
    reversed_ids = {row.original_event_id for row in rows
                    if row.kind == "reversal" and row.status == "reversed"}
    counts: dict[str, int] = {}
    for row in rows:
        if row.event_id in reversed_ids:
            continue
        if row.kind in DEBIT_KINDS and row.status in ("settled", "frozen"):
            _add(counts, "debits", row.amount_minor)
        elif row.kind == "refund" and row.status == "refund":
            _add(counts, "credits", row.amount_minor)
        elif row.kind == "void" and row.status == "voided":
            _add(counts, "debit_reversals", row.amount_minor)
    return BatchTotals(**counts)


def _add(counts: dict[str, int], name: str, amount: int) -> None:
    counts[name] = counts.get(name, 0) + 1
    counts[f"{name}_amount"] = counts.get(f"{name}_amount", 0) + amount
