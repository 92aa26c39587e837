"""What the forwarder knows of the center's confirmations, and how long to wait for them.

`ConfirmationInbox.receive` applies one confirm.v1 message: refused ones
change nothing (the first per connection is logged, the rest counted: a
forger cannot flood the log), a valid one marks its rows done in one write.
`wait_s` is how long a published event may wait before it is published
again: `confirm_timeout_s` while the center answers, then backing off (the
one Backoff policy) while it stays silent, back to the timeout as soon as
it confirms anything.

The forwarder hands confirmations over with `put` and `apply_queued` works
them off on its own: a confirmation's write (hundreds of rows, waiting for
the store's write lock) must not hold up a command behind it on the same
connection.
"""

from __future__ import annotations

import asyncio
import logging

from posgw.drivers.backoff import Backoff
from posgw.drivers.clock import Clock
from posgw.gateway.forward.confirmations import ConfirmationReader, Refused
from posgw.gateway.store.store import Store

log = logging.getLogger(__name__)

#: Repeated republishing of what stays unconfirmed backs off up to this: a
#: center away for a night is not sent its whole backlog again every minute.
CONFIRM_BACKOFF_CAP_S = 30 * 60.0
#: Confirmations received and not yet applied, at most; past it the
#: connection's reader waits (the center sends one per stored batch).
QUEUED_CONFIRMATIONS = 256


class ConfirmationInbox:
    def __init__(self, store: Store, reader: ConfirmationReader, clock: Clock,
                 timeout_s: float) -> None:
        self._store = store
        self._reader = reader
        self._clock = clock
        self.timeout_s = timeout_s
        self.wait_s = timeout_s
        # The first repeat waits [timeout, 2 x timeout], then doubling.
        self._backoff = Backoff(base=2 * timeout_s, cap=max(CONFIRM_BACKOFF_CAP_S, timeout_s))
        self._refusal_logged = False
        self.confirmed_total = 0
        self.refused_total = 0
        #: Monotonic time of the last valid confirmation (or of the start).
        self.heard_at = clock.monotonic()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUED_CONFIRMATIONS)

    def new_connection(self) -> None:
        self._refusal_logged = False

    async def put(self, raw: bytes) -> None:
        """Take a confirmation to apply in arrival order (`apply_queued`)."""
        await self._queue.put(raw)

    async def apply_queued(self) -> None:
        """Apply what `put` took, one after another, until cancelled."""
        while True:
            await self.receive(await self._queue.get())

    def silent_for(self) -> float:
        return max(0.0, self._clock.monotonic() - self.heard_at)

    def republished(self, count: int) -> None:
        """`count` events went out again: the next round waits longer."""
        self.wait_s = self._backoff.next_delay()
        log.warning("center confirmed nothing of %d published events within %.0f s: "
                    "published again; next check after %.0f s", count, self.timeout_s,
                    self.wait_s)

    async def receive(self, raw: bytes) -> None:
        confirmation = self._reader.read(raw)
        if isinstance(confirmation, Refused):
            self.refused_total += 1
            if not self._refusal_logged:
                self._refusal_logged = True
                log.warning("confirmation ignored (%s); further refusals on this connection "
                            "are counted, not logged", confirmation.reason)
            return
        done = await asyncio.to_thread(self._store.confirm, confirmation.stored,
                                       confirmation.quarantined, self._clock.utc_now())
        self.confirmed_total += done
        self.heard_at = self._clock.monotonic()
        self.wait_s = self.timeout_s  # the center answers: no backoff
        self._backoff.reset()
        for event_id, reason in confirmation.quarantined.items():
            log.warning("center quarantined event %s: %s", event_id, reason)
