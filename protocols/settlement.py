"""The settlement files' contract, shared by the center's readers and the
simulator's writers: the acquirer CSV's columns, the remittance text that
names the merchant-day a bank credit pays, and the fee a plan charges.

Data and arithmetic only (no I/O): docs/settlement.md describes the files.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

#: The acquirer settlement CSV's header, in the order our writer puts it.
ACQUIRER_CSV_COLUMNS = ("date", "merchant_id", "terminal_id", "rrn", "stan", "amount", "fee",
                        "net", "currency")

#: The unstructured remittance text (camt Ustrd, max 140 characters) that the
#: payer of a merchant's settlement credit writes: "POSGW SETTLE M0001 2026-12-04".
REMITTANCE_PATTERN = re.compile(r"POSGW SETTLE (\S{1,35}) (\d{4}-\d{2}-\d{2})")


def remittance_text(merchant_id: str, business_date: date) -> str:
    """What a settlement credit's remittance information says."""
    return f"POSGW SETTLE {merchant_id} {business_date.isoformat()}"


def plan_fee_minor(amount_minor: int, rate: Decimal, fixed_minor: int = 0) -> int:
    """The fee a plan charges on one sale: `rate` of the amount, rounded half
    up to the minor unit, plus the fixed fee. A return (negative amount)
    carries no fee: the plan charges sales, and a refund does not refund it."""
    if amount_minor <= 0:
        return 0
    share = (Decimal(amount_minor) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(share) + fixed_minor
