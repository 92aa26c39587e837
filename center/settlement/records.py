"""The records settlement passes between its parts.

The file readers (the acquirer's CSV, the bank's camt.053/054) turn a file
into these; matching compares them with the center's events; the monthly
statement is rendered from a `MonthlyStatement`. Amounts are integers in
minor units of `currency` (VND has none: 1 VND is 1), never floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class AcquirerLine:
    """One transaction in the acquirer's settlement report."""

    line_no: int  # 1-based line in the file, the header being line 1
    business_date: date
    merchant_id: str
    terminal_id: str
    rrn: str
    stan: str
    amount_minor: int  # what the acquirer settled (negative: a return)
    fee_minor: int  # what the acquirer deducted for it
    net_minor: int  # amount_minor - fee_minor, as the file states it
    currency: str  # ISO 4217 alphabetic


@dataclass(frozen=True, slots=True)
class BankCredit:
    """One credit booked to a merchant's settlement account (a camt.053
    statement entry, or a camt.054 notification)."""

    entry_ref: str  # the bank's own id of the entry (AcctSvcrRef/NtryRef): unique
    account_masked: str  # the account (IBAN or other id), masked as stored
    merchant_id: str | None  # read from the remittance information, when present
    amount_minor: int
    currency: str
    booking_date: date
    value_date: date
    reference: str  # what the payer wrote (EndToEndId / unstructured remittance)
    # The business day the credit pays for, when the remittance information
    # says so ("POSGW SETTLE M0001 2026-12-04"): what a late credit is late against.
    settles_date: date | None = None


@dataclass(frozen=True, slots=True)
class StatementDay:
    business_date: date
    gross_minor: int  # settled and re-cleared sales
    returns_minor: int  # refunds, voids, reversals
    held_minor: int  # frozen, not (yet) owed
    fee_minor: int  # by the plan
    net_minor: int  # gross - returns - fee
    value_date: date  # when the net is due on the account


@dataclass(frozen=True, slots=True)
class StatementCredit:
    value_date: date
    amount_minor: int
    reference: str


@dataclass(frozen=True, slots=True)
class StatementFinding:
    case_id: str
    kind: str  # fee_above_plan | charged_twice | failed_but_charged | missing_from_settlement
    #            | credit_missing | credit_short | unknown
    business_date: date
    amount_minor: int
    status: str  # open | resolved ...


@dataclass(frozen=True, slots=True)
class MonthlyStatement:
    """Everything the merchant's monthly PDF shows; the JSON report of the
    same merchant and month carries the same numbers."""

    merchant_id: str
    merchant_name: str
    account_masked: str
    month: str  # YYYY-MM
    currency: str
    plan: str  # in words, e.g. "0.60 % of the amount, no fixed fee per transaction"
    days: tuple[StatementDay, ...]
    credits: tuple[StatementCredit, ...]
    findings: tuple[StatementFinding, ...]

    @property
    def gross_minor(self) -> int:
        return sum(day.gross_minor for day in self.days)

    @property
    def returns_minor(self) -> int:
        return sum(day.returns_minor for day in self.days)

    @property
    def fee_minor(self) -> int:
        return sum(day.fee_minor for day in self.days)

    @property
    def net_minor(self) -> int:
        return sum(day.net_minor for day in self.days)

    @property
    def credited_minor(self) -> int:
        return sum(credit.amount_minor for credit in self.credits)
