"""The center's tables: received events (one row per event_id), quarantine,
and the gateway keys registered by command."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class ReceivedEvent(SQLModel, table=True):
    """A verified transaction event; `event_id` unique is what makes ingest
    idempotent (DESIGN rule 2)."""

    __tablename__ = "center_events"
    __table_args__ = (Index("ix_center_events_terminal_stan", "terminal_id", "stan"),
                      Index("ix_center_events_card_day", "pan_last4", "occurred_date"),
                      # The console's merchant + day search (pg_schema.MERCHANT_DAY_INDEX).
                      Index("ix_center_events_merchant_day", "merchant_id", "occurred_date",
                            "occurred_at"),
                      # A gateway numbers its events once: the same seq under
                      # another event_id is a replay or a forgery, never stored.
                      UniqueConstraint("gateway_id", "seq", name="uq_center_events_gateway_seq"))

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    topic: str = Field(max_length=256)
    branch_id: str = Field(max_length=32, index=True)
    gateway_id: str = Field(max_length=64)
    seq: int
    status: str = Field(max_length=16)
    kind: str = Field(max_length=32)
    terminal_id: str = Field(max_length=16)
    merchant_id: str = Field(default="", max_length=32)
    stan: str = Field(max_length=12)
    rrn: str | None = Field(default=None, max_length=12, index=True)
    auth_code: str | None = Field(default=None, max_length=6)
    response_code: str | None = Field(default=None, max_length=3)
    amount_minor: int
    currency: str = Field(max_length=3)
    pan_masked: str | None = Field(default=None, max_length=19)
    pan_last4: str | None = Field(default=None, max_length=4)
    pan_token: str | None = Field(default=None, max_length=64)
    entry_mode: str = Field(max_length=16)
    occurred_at: str = Field(max_length=40)  # as signed: UTC ISO 8601
    occurred_date: str = Field(max_length=10)  # YYYY-MM-DD (UTC) for daily queries
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class QuarantinedPayload(SQLModel, table=True):
    """A payload that failed verification: kept for inspection, never ingested."""

    __tablename__ = "center_quarantine"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=256)
    reason: str = Field(max_length=256)
    #: The reason's class (center/verify.py QuarantineKind), for counting; "" on
    #: rows stored before it existed.
    kind: str = Field(default="", max_length=32)
    #: The topic's branch level: whom the row counts against (at most
    #: `quarantine_rows_per_source` rows each, the rest only counted in
    #: center_quarantine_overflow); "" on rows stored before it existed.
    source: str = Field(default="", max_length=64, index=True)
    payload_text: str
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class QuarantineOverflow(SQLModel, table=True):
    """Payloads quarantined past a source's cap: counted, not kept."""

    __tablename__ = "center_quarantine_overflow"

    source: str = Field(primary_key=True, max_length=64)
    kind: str = Field(primary_key=True, max_length=32)
    count: int
    last_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SeenSeq(SQLModel, table=True):
    """The seq of a verified payload the center does not store (a terminal
    status, a case, a command reply): stored events and reports have theirs
    in their own tables. Together they tell which of a gateway's seqs never
    arrived (center/seq_gaps.py)."""

    __tablename__ = "center_seen_seqs"

    gateway_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)


class GatewaySeqs(SQLModel, table=True):
    """Per gateway, what the last gap check found (center/seq_gaps.py)."""

    __tablename__ = "center_gateway_seqs"

    gateway_id: str = Field(primary_key=True, max_length=64)
    #: Every seq up to this one has arrived: the next check starts above it.
    contiguous_through: int
    newest_seq: int
    missing: int  # seqs below newest_seq missing for longer than the settling time
    lost: int = 0  # seqs given up on after a day missing (center/seq_gaps.py GIVE_UP_S)
    checked_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class GatewayKey(SQLModel, table=True):
    """A gateway public key registered by `posgw center gateways register`.

    Trusted together with center.toml's `[[gateways]]` until `revoked_at` is
    set; a revoked row also withdraws the same key when center.toml lists it.
    A gateway may hold several keys at once: the old one stays trusted
    while events it signed still wait in the gateway's outbox.
    """

    __tablename__ = "center_gateway_keys"
    __table_args__ = (UniqueConstraint("gateway_id", "fingerprint",
                                       name="uq_center_gateway_keys"),)

    id: int | None = Field(default=None, primary_key=True)
    gateway_id: str = Field(max_length=64, index=True)
    #: The branch the gateway serves (its events must claim it); "" on rows
    #: registered before branches were (such a gateway is refused until
    #: registered again with --branch).
    branch_id: str = Field(default="", max_length=32)
    fingerprint: str = Field(max_length=64)  # SHA-256 hex of the DER public key
    public_key_pem: str = Field(sa_column=Column(Text, nullable=False))
    registered_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


RECONCILIATION_INDEX = "ix_center_reconciliations_outcome_closed"


class ReceivedReconciliation(SQLModel, table=True):
    """A gateway's report of one closed batch (schemas/reconciliation.v1.json):
    the terminal's totals against the gateway ledger's, and what differs."""

    __tablename__ = "center_reconciliations"
    __table_args__ = (UniqueConstraint("gateway_id", "seq",
                                       name="uq_center_reconciliations_gateway_seq"),
                      # The console lists the mismatched ones by day.
                      Index(RECONCILIATION_INDEX, "outcome", "batch_closed_at"))

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    topic: str = Field(max_length=256)
    branch_id: str = Field(max_length=32, index=True)
    gateway_id: str = Field(max_length=64)
    seq: int
    terminal_id: str = Field(max_length=16, index=True)
    outcome: str = Field(max_length=16)  # matched | mismatched
    batch_closed_at: str = Field(max_length=40)  # as signed: UTC ISO 8601
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class TerminalStatus(SQLModel, table=True):
    """The latest status of a terminal (terminal-status.v1), newest
    `occurred_at` winning (center/fleet_status.py). Times are fixed-width UTC
    text (`2026-12-07T19:28:43.123456Z`), so they compare as text on both
    databases."""

    __tablename__ = "center_terminal_status"

    branch_id: str = Field(primary_key=True, max_length=32)
    terminal_id: str = Field(primary_key=True, max_length=16)
    gateway_id: str = Field(max_length=64)
    state: str = Field(max_length=16)  # online | offline | decommissioned
    profile: str | None = Field(default=None, max_length=64)
    driver: str | None = Field(default=None, max_length=8)
    #: A decommissioned terminal's final statement, as JSON text (kept once sent).
    statement: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    occurred_at: str = Field(max_length=32)
    received_at: str = Field(max_length=32)


class GatewayStatus(SQLModel, table=True):
    """The latest status of a gateway (gateway-status.v1): its birth and
    refreshed births while online, its Last Will or goodbye when it goes
    (center/fleet_status.py says how a Will, signed at connect time, is
    ordered). Times as in TerminalStatus."""

    __tablename__ = "center_gateway_status"

    gateway_id: str = Field(primary_key=True, max_length=64)
    branch_id: str = Field(max_length=32)
    state: str = Field(max_length=16)  # online | offline
    last_seq: int
    #: The outbox counts of the newest birth, as JSON text; None before any.
    outbox: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    occurred_at: str = Field(max_length=32)  # the newest status's, by the gateway's clock
    online_since: str = Field(max_length=32)  # the birth that began this connection
    offline_at: str | None = Field(default=None, max_length=32)  # when the death arrived
    received_at: str = Field(max_length=32)  # the last status received: last seen
