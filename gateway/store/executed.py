"""The store's memory of executed commands, and the pruning of what is done.

Both prunes run in bounded batches (`limit` rows a call) from the daemon's
housekeeping, so a backlog of a week's delivered events never holds the
write lock, and with it the terminals' commits, for long.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import Delete, delete, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from posgw.gateway.store.models import ExecutedCommand, OutboxEvent


class RetentionQueries:
    """Store's executed-command and pruning queries (a mixin: Store owns the engine)."""

    engine: Engine
    write_lock: threading.Lock

    def executed_command(self, command_id: str) -> ExecutedCommand | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(ExecutedCommand, command_id)

    def prune_executed_commands(self, issued_before: datetime, limit: int) -> int:
        """Forget up to `limit` commands issued before `issued_before`; how many."""
        oldest = (select(col(ExecutedCommand.command_id))
                  .where(col(ExecutedCommand.issued_at) < issued_before).limit(limit))
        return self._delete(delete(ExecutedCommand).where(
            col(ExecutedCommand.command_id).in_(oldest.scalar_subquery())))

    def prune_delivered(self, delivered_before: datetime, limit: int) -> int:
        """Delete up to `limit` outbox rows done before `delivered_before`; how many.

        The row with the highest seq always stays: the next event's seq is
        counted on from it, and a gateway's seq never goes back (the center
        reads gaps and repeats from it)."""
        last = select(func.max(col(OutboxEvent.seq))).scalar_subquery()
        oldest = (select(col(OutboxEvent.id))
                  .where(col(OutboxEvent.delivered_at) < delivered_before,
                         col(OutboxEvent.seq) < last)
                  .order_by(col(OutboxEvent.id)).limit(limit))
        return self._delete(delete(OutboxEvent).where(
            col(OutboxEvent.id).in_(oldest.scalar_subquery())))

    def _delete(self, statement: Delete) -> int:
        with self.write_lock, self.engine.begin() as conn:
            return max(conn.execute(statement).rowcount, 0)
