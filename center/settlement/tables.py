"""The settlement tables in the center database (SQLite or PostgreSQL),
made with the others when the store opens (center/db.py).

Dates are "YYYY-MM-DD" text, like `center_events.occurred_date`, so they
compare with it directly on both databases. Amounts are integers in minor
units (bigint: a month of a large merchant passes 2^31 VND). No table holds
an account number in clear: only its masked form (protocols/redact.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def _money(nullable: bool = False) -> Any:
    return Field(default=None if nullable else 0,
                 sa_column=Column(BigInteger, nullable=nullable))


def _moment(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Merchant(SQLModel, table=True):
    __tablename__ = "settlement_merchants"

    merchant_id: str = Field(primary_key=True, max_length=32)  # the terminals' merchant_id
    name: str = Field(max_length=128)
    branch_id: str = Field(max_length=32)
    account_masked: str = Field(max_length=34)  # never the account number itself
    currency: str = Field(max_length=3)
    added_at: datetime = _moment()


class FeePlanRow(SQLModel, table=True):
    """A plan is in force from `effective_from` until the next one's."""

    __tablename__ = "settlement_fee_plans"
    __table_args__ = (UniqueConstraint("merchant_id", "effective_from",
                                       name="uq_settlement_fee_plans_from"),)

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: str = Field(max_length=32, foreign_key="settlement_merchants.merchant_id")
    effective_from: str = Field(max_length=10)
    rate_ppm: int  # parts per million of the amount: 0.6 % is 6000
    fixed_minor: int = _money()
    minimum_minor: int | None = _money(nullable=True)
    cap_minor: int | None = _money(nullable=True)
    set_at: datetime = _moment()


class SettlementFile(SQLModel, table=True):
    """An imported file, by its SHA-256: the same bytes are imported once."""

    __tablename__ = "settlement_files"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True, max_length=64)
    kind: str = Field(max_length=16)  # acquirer-csv | camt
    name: str = Field(max_length=255)
    records: int  # lines or entries it held
    stored: int  # of those, the ones not already stored from another file
    imported_at: datetime = _moment()


class AcquirerLineRow(SQLModel, table=True):
    """One line of an acquirer's settlement report. `occurrence` counts the
    same transaction within one file (1, 2, ...): a line sent again in
    another file is the same line, a second one in the same file is the
    acquirer settling it twice."""

    __tablename__ = "settlement_acquirer_lines"
    __table_args__ = (
        UniqueConstraint("business_date", "terminal_id", "rrn", "stan", "amount_minor",
                         "occurrence", name="uq_settlement_acquirer_lines_key"),
        Index("ix_settlement_acquirer_lines_day", "business_date", "merchant_id"),
        Index("ix_settlement_acquirer_lines_tx", "terminal_id", "rrn"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: Indexed: an import counts the rows its file stored (a foreign key has no index).
    file_id: int = Field(foreign_key="settlement_files.id", index=True)
    line_no: int
    occurrence: int
    business_date: str = Field(max_length=10)
    merchant_id: str = Field(max_length=32)
    terminal_id: str = Field(max_length=16)
    rrn: str = Field(max_length=12)
    stan: str = Field(max_length=12)
    amount_minor: int = _money()
    fee_minor: int = _money()
    net_minor: int = _money()
    currency: str = Field(max_length=3)


class BankCreditRow(SQLModel, table=True):
    """A credit to a merchant's account (camt.053 entry or camt.054
    notification: the same entry in both is stored once)."""

    __tablename__ = "settlement_bank_credits"
    __table_args__ = (
        UniqueConstraint("account_masked", "entry_ref", name="uq_settlement_bank_credits_ref"),
        Index("ix_settlement_bank_credits_merchant", "merchant_id", "business_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: Indexed: an import counts the rows its file stored (a foreign key has no index).
    file_id: int = Field(foreign_key="settlement_files.id", index=True)
    entry_ref: str = Field(max_length=64)
    account_masked: str = Field(max_length=34)
    #: From the remittance information, else the register's merchant of the account.
    merchant_id: str | None = Field(default=None, max_length=32)
    #: The business day the credit pays, when its reference names one.
    business_date: str | None = Field(default=None, max_length=10)
    amount_minor: int = _money()
    currency: str = Field(max_length=3)
    booking_date: str = Field(max_length=10)
    value_date: str = Field(max_length=10)
    reference: str = Field(max_length=140)


class SettlementCase(SQLModel, table=True):
    """A finding, opened as a complaint case (shown as `S-{id}`). The
    `finding_key` names what was found (kind and subject), so matching
    run again finds nothing new."""

    __tablename__ = "settlement_cases"
    __table_args__ = (Index("ix_settlement_cases_merchant", "merchant_id", "business_date"),)

    id: int | None = Field(default=None, primary_key=True)
    finding_key: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=32)
    merchant_id: str = Field(max_length=32)
    business_date: str = Field(max_length=10)
    amount_minor: int = _money()
    currency: str = Field(max_length=3)
    evidence: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    opened_at: datetime = _moment()
    first_response_due_at: datetime = _moment()
    status: str = Field(default="open", max_length=16)  # open | resolved
    resolution: str | None = Field(default=None, max_length=1000)
    resolved_at: datetime | None = _moment(nullable=True)
    resolved_by: str | None = Field(default=None, max_length=64)


SETTLEMENT_MODELS = (Merchant, FeePlanRow, SettlementFile, AcquirerLineRow, BankCreditRow,
                     SettlementCase)
