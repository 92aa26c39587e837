"""Batch settlement (0500): the terminal's totals against the ledger's.

The terminal sends its batch totals in 1987 fields 74-77 and 86-89
(credits, credit reversals, debits, debit reversals: counts, then
amounts). The gateway counts the same from the ledger rows of that
terminal since its batch opened:

- debits: approved purchases, pre-authorizations, completions (settled or
  frozen: a freeze holds the funds, the sale still happened);
- credits: approved refunds;
- debit reversals: approved voids;
- a purchase undone by a reversal (0400, a sale the terminal never saw
  approved) counts on neither side, and neither does the reversal.

Equal: 00 and the batch closes. Different: 95 (reconcile error), the batch
closes all the same (the terminal starts a new one either way), and the
Reconciliation row keeps both sets of totals and the differences, for
`posgw status` and the people who must chase them. Balance inquiries (field
80) are not money and are not compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from gateway.store.store import BatchRow
from protocols.iso8583.message import Message

DEBIT_KINDS = frozenset({"purchase", "preauth", "completion"})
_FIELDS = {"credits": 74, "credit_reversals": 75, "debits": 76, "debit_reversals": 77,
           "credits_amount": 86, "credit_reversals_amount": 87, "debits_amount": 88,
           "debit_reversals_amount": 89}


@dataclass(frozen=True, slots=True)
class Totals:
    credits: int = 0
    credit_reversals: int = 0
    debits: int = 0
    debit_reversals: int = 0
    credits_amount: int = 0
    credit_reversals_amount: int = 0
    debits_amount: int = 0
    debit_reversals_amount: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def differences(self, ledger: Totals) -> dict[str, dict[str, int]]:
        mine, theirs = self.as_dict(), ledger.as_dict()
        return {name: {"terminal": mine[name], "ledger": theirs[name]}
                for name in mine if mine[name] != theirs[name]}


def terminal_totals(request: Message) -> Totals | None:
    """The totals a 0500 carries; None when one of them is not a number."""
    values: dict[str, int] = {}
    for name, number in _FIELDS.items():
        text = request.text(number, "0") or "0"
        if not text.isdigit():
            return None
        values[name] = int(text)
    return Totals(**values)


def ledger_totals(rows: Iterable[BatchRow]) -> Totals:
    rows = list(rows)
    reversed_ids = {row.original_event_id for row in rows
                    if row.kind == "reversal" and row.status == "reversed"}
    counts = dict.fromkeys(_FIELDS, 0)
    for row in rows:
        if row.event_id in reversed_ids:
            continue
        if row.kind in DEBIT_KINDS and row.status in ("settled", "frozen"):
            _add(counts, "debits", row.amount_minor)
        elif row.kind == "refund" and row.status == "refund":
            _add(counts, "credits", row.amount_minor)
        elif row.kind == "void" and row.status == "voided":
            _add(counts, "debit_reversals", row.amount_minor)
    return Totals(**counts)


def _add(counts: dict[str, int], name: str, amount: int) -> None:
    counts[name] += 1
    counts[f"{name}_amount"] += amount
