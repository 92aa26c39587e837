"""Store-and-forward to the acquirer: reversal advices sent until answered.

When a request went upstream and no answer came, the acquirer may have
approved it while the terminal was told "no" (91): the pipeline queues a
0420 reversal advice in the same commit as the declined transaction. This
sender delivers queued advices in order once the acquirer answers again;
repeats go out as 0421 (the MTI's repeat flag). An advice is done when the
acquirer has answered it — whatever its code: the acquirer has seen it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from posgw.drivers.clock import Clock
from posgw.gateway.authorize.base import UpstreamUnavailable
from posgw.gateway.authorize.upstream import Iso8583Upstream
from posgw.gateway.store.models import UpstreamQueueItem
from posgw.gateway.store.store import Store
from posgw.protocols.iso8583.message import FieldValue, Message

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0
BATCH = 32
#: Retry pause after an unanswered advice; acquirers expect repeats within minutes.
RETRY_AFTER = timedelta(seconds=5)


class AdviceSender:
    def __init__(self, store: Store, upstream: Iso8583Upstream, clock: Clock) -> None:
        self._store = store
        self._upstream = upstream
        self._clock = clock
        self._wake = asyncio.Event()
        self.sent = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            due = await asyncio.to_thread(self._store.due_advices, self._clock.utc_now(), BATCH)
            if due and self._upstream.connected:
                for item in due:
                    if not await self._send(item):
                        break
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_INTERVAL_S):
                    await self._wake.wait()

    async def _send(self, item: UpstreamQueueItem) -> bool:
        assert item.id is not None
        mti = item.mti if item.attempts == 0 else item.mti[:3] + str(int(item.mti[3]) | 1)
        fields: dict[int, FieldValue] = {int(n): v for n, v in item.fields.items()}
        now = self._clock.utc_now()
        try:
            response = await self._upstream.exchange(Message(mti, fields), from_terminal=False)
        except UpstreamUnavailable as exc:
            log.warning("reversal advice %s not answered (%s); retrying", item.event_id, exc)
            await asyncio.to_thread(self._store.advice_attempted, item.id, done_at=None,
                                    next_attempt_at=now + RETRY_AFTER)
            return False
        log.info("reversal advice %s answered %s", item.event_id, response.text(39))
        await asyncio.to_thread(self._store.advice_attempted, item.id, done_at=now,
                                next_attempt_at=now)
        self.sent += 1
        return True
