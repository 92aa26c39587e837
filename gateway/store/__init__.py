"""The gateway's durable store: ledger, outbox, terminals, cases, upstream queue."""

from typing import TYPE_CHECKING, Any

from posgw.gateway.store.errors import (
    DuplicateRequest,
    OutboxFull,
    SchemaVersionMismatch,
    StoreError,
)
from posgw.gateway.store.models import (
    FORBIDDEN_RESPONSE_FIELDS,
    SCHEMA_VERSION,
    ExecutedCommand,
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

if TYPE_CHECKING:
    from posgw.gateway.store.committer import (
        DEFAULT_MAX_BATCH,
        DEFAULT_OUTBOX_CAP,
        GroupCommitter,
    )

#: The group committer (and asyncio with it) loads on first use: the
#: operator commands (`posgw status`, `cases`) read the store without it.
_COMMITTER_NAMES = frozenset({"DEFAULT_MAX_BATCH", "DEFAULT_OUTBOX_CAP", "GroupCommitter"})


def __getattr__(name: str) -> Any:
    if name in _COMMITTER_NAMES:
        from posgw.gateway.store import committer

        return getattr(committer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_OUTBOX_CAP",
    "FORBIDDEN_RESPONSE_FIELDS",
    "SCHEMA_VERSION",
    "DuplicateRequest",
    "ExecutedCommand",
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
