"""The gateway's tables (sqlmodel).

Rule 5 (DESIGN.md): no table has a column for a clear PAN, track data or a
PIN block; cards appear only as `pan_masked` and `pan_token`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from posgw.gateway.store.columns import JsonDocument, UtcDateTime

#: Bump when a table changes; Store refuses a database recorded with another.
SCHEMA_VERSION = 4  # 4: confirmation columns (store/migrate.py adds them to a 3)
# (A new table needs no bump: Store's create_all adds it to an older database.)

#: Request fields that may hold card secrets: never in a stored response.
FORBIDDEN_RESPONSE_FIELDS = frozenset({"2", "14", "35", "36", "45", "52", "55"})


def _utc(*, nullable: bool) -> Any:
    if nullable:
        return Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    return Field(sa_column=Column(UtcDateTime(), nullable=False))


def _json(default_factory: Any = None) -> Any:
    column = Column(JsonDocument(), nullable=False)
    if default_factory is None:
        return Field(sa_column=column)
    return Field(default_factory=default_factory, sa_column=column)


class LedgerEntry(SQLModel, table=True):
    """One final transaction. (terminal_id, message_class, stan,
    transmission_time) is the retransmit key (rule 3): a repeat gets
    `response_fields` back. The message class (MTI's second digit) keeps a
    reversal that reuses its original's STAN from matching the original."""

    __tablename__ = "transactions"
    __table_args__ = (UniqueConstraint("terminal_id", "message_class", "stan",
                                       "transmission_time", name="uq_transactions_request"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    terminal_id: str = Field(max_length=16)
    message_class: str = Field(default="2", max_length=1)
    stan: str = Field(max_length=12)
    # Field 7 as sent; "" when the dialect has none (then no retransmit dedupe).
    transmission_time: str = Field(default="", max_length=14)
    merchant_id: str = Field(default="", max_length=32)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)
    mti: str = Field(max_length=4)
    amount_minor: int = 0
    currency: str = Field(default="", max_length=3)
    pan_masked: str | None = Field(default=None, max_length=19)
    pan_token: str | None = Field(default=None, max_length=64, index=True)
    rrn: str | None = Field(default=None, max_length=12, index=True)
    auth_code: str | None = Field(default=None, max_length=6)
    response_code: str | None = Field(default=None, max_length=3)
    entry_mode: str = Field(default="unknown", max_length=16)
    # The reversed/voided transaction's event_id, when this row undoes one.
    original_event_id: str | None = Field(default=None, max_length=64)
    risk: list[str] = _json(list)
    # Response field number -> value as sent, replayed on a retransmit.
    response_fields: dict[str, str] = _json(dict)
    occurred_at: datetime = _utc(nullable=False)


#: Rows on every topic but `tx` (command replies, statuses, cases): they go
#: out ahead of a backlog. Literal SQL, the same text in the partial index
#: and in the query, so that SQLite and PostgreSQL see the query implies it.
CONTROL_ROWS = "topic NOT LIKE '%/tx'"


class OutboxEvent(SQLModel, table=True):
    """One event until the center holds it. `seq` is assigned at commit; so is
    `wire`, the signed payload exactly as published, when the committer seals.

    Three states (DESIGN rule 2): pending (`published_at` and `delivered_at`
    None), published (the broker's PUBACK set `published_at`), done
    (`delivered_at` set: the center confirmed it, or quarantined it and
    `quarantine_reason` says why; without `[keys] center_public_key` the
    PUBACK itself, as before confirmations existed). Every row not done
    counts against the outbox cap.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "delivered_at", "seq"),
        # The forwarder looks for control rows every round of a backlog; without
        # this it read every pending row (a 100,000-event backlog: 0.8 s a look).
        Index("ix_outbox_control", "delivered_at", "published_at", "seq",
              sqlite_where=text(CONTROL_ROWS),
              postgresql_where=text(CONTROL_ROWS)),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    seq: int = Field(default=0, unique=True)
    topic: str = Field(max_length=256)
    terminal_id: str | None = Field(default=None, max_length=16)
    retain: bool = False
    payload: dict[str, Any] = _json()
    wire: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = _utc(nullable=False)
    delivered_at: datetime | None = _utc(nullable=True)
    attempts: int = 0
    published_at: datetime | None = _utc(nullable=True)
    quarantine_reason: str | None = Field(default=None, max_length=200)


class TerminalRecord(SQLModel, table=True):
    __tablename__ = "terminals"

    terminal_id: str = Field(primary_key=True, max_length=16)
    merchant_id: str = Field(default="", max_length=32)
    profile: str = Field(default="", max_length=64)
    driver: str = Field(default="", max_length=8)
    state: str = Field(default="offline", max_length=16)  # online|offline|draining|decommissioned
    registered_at: datetime = _utc(nullable=False)
    last_seen_at: datetime | None = _utc(nullable=True)
    # The open batch began here: its transactions are the ledger's since then.
    batch_opened_at: datetime | None = _utc(nullable=True)


class Reconciliation(SQLModel, table=True):
    """One batch settlement (0500) compared with the ledger: totals both ways."""

    __tablename__ = "reconciliations"

    id: int | None = Field(default=None, primary_key=True)
    terminal_id: str = Field(max_length=16, index=True)
    opened_at: datetime | None = _utc(nullable=True)
    closed_at: datetime = _utc(nullable=False)
    outcome: str = Field(max_length=16)  # matched | mismatched
    terminal_totals: dict[str, int] = _json()
    ledger_totals: dict[str, int] = _json()
    # Per total that differs: {"name": {"terminal": n, "ledger": m}}.
    differences: dict[str, Any] = _json()
    # The reconciliation.v1 event committed with this row (pipeline/settlement.py).
    report_event_id: str | None = Field(default=None, max_length=64)


class UpstreamQueueItem(SQLModel, table=True):
    """Store-and-forward to the acquirer (advices, reversals) while it is down.

    Holds references (STAN, RRN, field 7, amount, token), never the PAN:
    the acquirer matches reversals by their original data elements.
    """

    __tablename__ = "upstream_queue"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    terminal_id: str = Field(max_length=16)
    mti: str = Field(max_length=4)
    fields: dict[str, str] = _json()
    created_at: datetime = _utc(nullable=False)
    next_attempt_at: datetime = _utc(nullable=False)
    attempts: int = 0
    done_at: datetime | None = _utc(nullable=True)


class FreezeCase(SQLModel, table=True):
    __tablename__ = "cases"

    id: str = Field(primary_key=True, max_length=64)
    # gateway/case_policy.py: open|evidence_submitted (funds held), released|returned|expired
    status: str = Field(default="open", max_length=20)
    terminal_id: str = Field(max_length=16)
    rule: str = Field(max_length=64)
    pan_token: str | None = Field(default=None, max_length=64)
    evidence: dict[str, Any] = _json()
    opened_at: datetime = _utc(nullable=False)
    updated_at: datetime = _utc(nullable=False)
    # Deadlines fixed when the case opens ([cases] in the config): a later
    # config change does not move the promise already made.
    first_response_due_at: datetime | None = _utc(nullable=True)
    expires_at: datetime | None = _utc(nullable=True)
    # Set once the overdue notice went out, so it goes out once.
    overdue_notified_at: datetime | None = _utc(nullable=True)


class CaseEvidence(SQLModel, table=True):
    """A file submitted for a freeze case, known by its SHA-256. With
    `held_at` "gateway" the bytes are in the evidence store (a file named by
    the hash, gateway/evidence.py); with "center" head office keeps them and
    sent only this metadata. The same file twice on one case is one row."""

    __tablename__ = "case_evidence"
    __table_args__ = (UniqueConstraint("case_id", "sha256", name="uq_case_evidence_file"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(max_length=64, index=True)
    sha256: str = Field(max_length=64)
    size_bytes: int
    filename: str = Field(max_length=255)
    submitted_by: str = Field(max_length=64)
    submitted_at: datetime = _utc(nullable=False)
    held_at: str = Field(default="gateway", max_length=8)  # gateway | center


class GatewayRuntime(SQLModel, table=True):
    """What the running daemon last reported (one row): `posgw status` reads
    it with the daemon up or down. `heartbeat_at` older than a few seconds
    means the daemon is not running (or hung)."""

    __tablename__ = "gateway_runtime"

    id: int = Field(default=1, primary_key=True)
    gateway_id: str = Field(default="", max_length=64)
    pid: int = 0
    started_at: datetime | None = _utc(nullable=True)
    heartbeat_at: datetime | None = _utc(nullable=True)
    stopped_at: datetime | None = _utc(nullable=True)
    broker: str = Field(default="", max_length=256)  # host:port
    broker_connected: bool = False
    broker_changed_at: datetime | None = _utc(nullable=True)
    # Set while published events wait on a center that confirms nothing.
    center_silent_since: datetime | None = _utc(nullable=True)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"

    id: int = Field(default=1, primary_key=True)
    version: int
    applied_at: datetime = _utc(nullable=False)


class VaultedCard(SQLModel, table=True):
    """The PAN of a frozen sale, AES-256-GCM encrypted (gateway/security/vault.py).

    The one place a full card number rests, because a freeze case may end in
    a return to the card. Written in the frozen ledger row's own commit,
    bound to its `event_id` (and `key_id`) as GCM associated data; deleted
    once the case is resolved. No other column ever holds card data.
    """

    __tablename__ = "card_vault"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)  # the frozen ledger row's
    key_id: str = Field(max_length=32)  # the vault key that sealed it
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _utc(nullable=False)


class ExecutedCommand(SQLModel, table=True):
    """A command from the center this gateway acted on, by its command_id:
    a repeat (a replay captured on the broker, a redelivery) is answered
    with this outcome and not acted on again. Kept while a repeat could
    still be fresh (`[commands] max_age_s` past `issued_at`): an older one
    is refused as stale anyway."""

    __tablename__ = "executed_commands"

    command_id: str = Field(primary_key=True, max_length=36)  # a UUID (command.v1)
    command: str = Field(max_length=16)
    issued_at: datetime = _utc(nullable=False)
    executed_at: datetime = _utc(nullable=False)
    outcome: str = Field(max_length=16)
    detail: str = Field(default="", max_length=256)
