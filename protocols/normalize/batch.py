"""Batch totals as a settlement request (0500) carries them.

ISO 8583:1987 fields 74-77 count credits, credit reversals, debits and
debit reversals, 80 inquiries, and 86-89 carry the matching amounts (minor
units). Terminals, acquirer hosts and the gateway all count the same
things; this is the one place that knows which field holds what.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from posgw.protocols.iso8583.message import Message

COUNT_DIGITS = 10  # fields 74-80 are n10
AMOUNT_DIGITS = 16  # fields 86-89 are n16
FIELD_OF = {"credits": 74, "credit_reversals": 75, "debits": 76, "debit_reversals": 77,
            "inquiries": 80, "credits_amount": 86, "credit_reversals_amount": 87,
            "debits_amount": 88, "debit_reversals_amount": 89}
#: What moves money: compared when a batch is reconciled (inquiries are not).
MONEY_TOTALS = tuple(name for name in FIELD_OF if name != "inquiries")


@dataclass(frozen=True, slots=True)
class BatchTotals:
    """Debits are purchases, credits refunds; a void of a purchase is a debit reversal."""

    credits: int = 0
    credits_amount: int = 0
    credit_reversals: int = 0
    credit_reversals_amount: int = 0
    debits: int = 0
    debits_amount: int = 0
    debit_reversals: int = 0
    debit_reversals_amount: int = 0
    inquiries: int = 0

    def fields(self) -> dict[int, str]:
        """The request's fields 74-77, 80 and 86-89."""
        return {number: f"{getattr(self, name):0{_width(name)}d}"
                for name, number in FIELD_OF.items()}

    @classmethod
    def from_fields(cls, message: Message, *, strict: bool = False) -> BatchTotals | None:
        """The totals `message` carries; an absent field is 0. A field that is not
        digits is 0, or makes the result None when `strict`."""
        values: dict[str, int] = {}
        for name, number in FIELD_OF.items():
            text = message.text(number, "0") or "0"
            if not text.isdigit():
                if strict:
                    return None
                text = "0"
            values[name] = int(text)
        return cls(**values)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def money_differences(self, other: BatchTotals) -> dict[str, dict[str, int]]:
        """{total: {"terminal": ours, "ledger": theirs}} for each money total that differs."""
        return {name: {"terminal": getattr(self, name), "ledger": getattr(other, name)}
                for name in MONEY_TOTALS if getattr(self, name) != getattr(other, name)}


def _width(name: str) -> int:
    return AMOUNT_DIGITS if name.endswith("_amount") else COUNT_DIGITS



