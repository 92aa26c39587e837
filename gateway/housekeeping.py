"""What the daemon prunes in the background, so its database stops growing:
delivered outbox rows past `[store] keep_delivered_days`, and the memory of
executed commands once a repeat of them would be stale anyway.

Each prune deletes bounded batches, one short write each, so the
terminals' commits wait behind none of them for long.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from posgw.drivers.clock import Clock
from posgw.gateway.metrics import GatewayMetrics
from posgw.gateway.store import Store

log = logging.getLogger(__name__)

#: A prune round this often: rows pass their retention by the day, not the second.
PRUNE_EVERY_S = 300.0
#: Rows deleted per write.
PRUNE_BATCH = 1000


class StoreHousekeeping:
    def __init__(self, store: Store, clock: Clock, metrics: GatewayMetrics, *,
                 keep_delivered: timedelta, command_window: timedelta) -> None:
        """`command_window`: how long after `issued_at` a repeat is still fresh."""
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._keep_delivered = keep_delivered
        self._command_window = command_window

    async def run(self) -> None:
        while True:
            await self.prune()
            await asyncio.sleep(PRUNE_EVERY_S)  # a timer

    async def prune(self) -> int:
        """One round; returns the outbox rows deleted."""
        now = self._clock.utc_now()
        pruned = 0
        while True:
            batch = await asyncio.to_thread(self._store.prune_delivered,
                                            now - self._keep_delivered, PRUNE_BATCH)
            pruned += batch
            self._metrics.outbox_pruned(batch)
            if batch < PRUNE_BATCH:
                break
        while await asyncio.to_thread(self._store.prune_executed_commands,
                                      now - self._command_window, PRUNE_BATCH) == PRUNE_BATCH:
            pass
        if pruned:
            log.info("pruned %d delivered outbox rows older than %d days", pruned,
                     self._keep_delivered.days)
        return pruned
