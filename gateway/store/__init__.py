"""The gateway's durable store: ledger, outbox, terminals, cases, upstream queue."""

from posgw.gateway.store.committer import DEFAULT_MAX_BATCH, DEFAULT_OUTBOX_CAP, GroupCommitter
from posgw.gateway.store.errors import (
    DuplicateRequest,
    OutboxFull,
    SchemaVersionMismatch,
    StoreError,
)
from posgw.gateway.store.models import (
    FORBIDDEN_RESPONSE_FIELDS,
    SCHEMA_VERSION,
    FreezeCase,
    GatewayRuntime,
    LedgerEntry,
    OutboxEvent,
    Reconciliation,
    SchemaVersion,
    TerminalRecord,
    UpstreamQueueItem,
)
from posgw.gateway.store.store import OutboxStats, Store

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_OUTBOX_CAP",
    "FORBIDDEN_RESPONSE_FIELDS",
    "SCHEMA_VERSION",
    "DuplicateRequest",
    "FreezeCase",
    "GatewayRuntime",
    "GroupCommitter",
    "LedgerEntry",
    "OutboxEvent",
    "OutboxFull",
    "OutboxStats",
    "Reconciliation",
    "SchemaVersion",
    "SchemaVersionMismatch",
    "Store",
    "StoreError",
    "TerminalRecord",
    "UpstreamQueueItem",
]
