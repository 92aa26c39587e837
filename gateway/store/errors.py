"""Store errors: each names what was refused and why."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's own errors."""


class SchemaVersionMismatch(StoreError):
    def __init__(self, database: str, found: int, expected: int) -> None:
        super().__init__(
            f"{database}: database schema version {found}, this posgw needs {expected}; "
            "migrate or point [gateway] database at a new file")
        self.found = found
        self.expected = expected


class OutboxFull(StoreError):
    """The outbox holds `cap` undelivered events: refusing new ones rather than
    dropping any. The caller must decline the request (nothing was stored)."""

    def __init__(self, depth: int, cap: int) -> None:
        super().__init__(f"outbox full: {depth} undelivered events, cap {cap}")
        self.depth = depth
        self.cap = cap


class DuplicateRequest(StoreError):
    """A ledger row with the same (terminal, STAN, transmission time) or the
    same event id already exists: a retransmit, answer with the stored response."""

    def __init__(self, terminal_id: str, stan: str) -> None:
        super().__init__(f"duplicate request: terminal {terminal_id} STAN {stan}")
        self.terminal_id = terminal_id
        self.stan = stan
