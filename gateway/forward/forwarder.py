"""`OutboxForwarder`: the outbox table to the broker, QoS 1, nothing lost.

One reconnect loop, a fresh client per attempt, the one Backoff policy.
On each connection: publish the retained birth (the Last Will is the
matching death), then pump the outbox in seq order — which is in order per
terminal — in windows of up to `window` publishes in flight. A row is
marked delivered only once its `await client.publish(qos=1)` has returned,
i.e. after the broker's PUBACK (DESIGN rule 2). Whatever was not acked
stays pending in the table and goes out on the next connection, also after
a restart of the process. The center dedupes by `event_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt

from posgw.drivers.backoff import Backoff
from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.drivers.mqtt import QOS_AT_LEAST_ONCE, MqttConfig, new_client
from posgw.gateway.forward.events import new_event_id
from posgw.gateway.forward.fresh import FreshEvents
from posgw.gateway.security.signing import PayloadSigner
from posgw.gateway.store.store import PendingEvent, Store
from posgw.protocols.contract import command_topic, gateway_status, gateway_status_topic

log = logging.getLogger(__name__)
#: aiomqtt logs a warning for every publish started while more than ten are
#: pending: with our window of 64 that is nearly every publish, and writing
#: those lines cost more than the publishing. Errors still come through.
MQTT_LOGGER = logging.getLogger("posgw.gateway.forward.aiomqtt")
MQTT_LOGGER.setLevel(logging.ERROR)
CommandCallback = Callable[[bytes], Awaitable[None]]

DEFAULT_WINDOW = 64  # in-flight QoS 1 publishes; also paho's max_inflight
#: Re-read the outbox this often even without a wake-up (rows committed by
#: another process, a lost notification).
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_PUBLISH_TIMEOUT_S = 30.0
#: Time allowed for the "offline" status on a graceful stop.
GOODBYE_TIMEOUT_S = 2.0
#: Acked rows are marked delivered this often (one write each time, holding
#: the store's write lock, which the group commit waits for). A mark lost to a
#: crash only republishes those events, and the center ignores repeats.
MARK_INTERVAL_S = 0.25
#: Rows read from the outbox table at a time (a backlog after a restart or
#: an outage). With one query per window of 64 the forwarder made 77% of a
#: bare aiomqtt client's rate in bench/e2e.py, with 512 rows 89-112%; the
#: rows past the window wait for a free slot.
TABLE_READ_ROWS = 512
#: How often the oldest unacknowledged publish is checked against the timeout.
WATCH_INTERVAL_S = 1.0


class OutboxForwarder:
    def __init__(self, store: Store, mqtt: MqttConfig, signer: PayloadSigner,
                 clock: Clock = SYSTEM_CLOCK, *, branch_id: str, gateway_id: str,
                 window: int = DEFAULT_WINDOW, backoff: Backoff | None = None,
                 poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
                 connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
                 publish_timeout_s: float = DEFAULT_PUBLISH_TIMEOUT_S) -> None:
        self._store = store
        self._mqtt = mqtt
        self._signer = signer
        self._clock = clock
        self._branch_id = branch_id
        self._gateway_id = gateway_id
        self._window = window
        self._backoff = backoff or Backoff()
        self._poll_interval_s = poll_interval_s
        self._connect_timeout_s = connect_timeout_s
        self._publish_timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        self._fresh = FreshEvents()
        self._read_table = True  # the outbox may hold rows from before this process
        self.connected = asyncio.Event()
        self.delivered_total = 0
        #: Receives each message on the branch's `cmd` topic (set by the daemon).
        self.on_command: CommandCallback | None = None
        self.connections = 0

    def seal(self, payload: dict[str, Any]) -> bytes:
        """The bytes published for `payload`: signed canonical JSON. The group
        committer calls this (as its `seal`) once the seq is set."""
        return self._signer.seal(payload)

    def wake(self, events: Sequence[PendingEvent] = ()) -> None:
        """New rows were committed: publish now (GroupCommitter's on_commit).
        Without `events`, rows were written elsewhere: read the table."""
        if events:
            self._fresh.add(events)
        else:
            self._read_table = True
        self._wake.set()

    async def run(self) -> None:
        """Forward until cancelled, reconnecting with backoff."""
        while True:
            try:
                await self._connection()
            except* (aiomqtt.MqttError, OSError, TimeoutError) as group:
                log.warning("MQTT %s:%d: %s; reconnecting", self._mqtt.host, self._mqtt.port,
                            "; ".join(str(exc) for exc in group.exceptions))
            finally:
                self.connected.clear()
            await asyncio.sleep(self._backoff.next_delay())

    async def _connection(self) -> None:
        last_seq = await asyncio.to_thread(self._store.max_seq)
        status_topic = gateway_status_topic(self._mqtt.topic_prefix, self._branch_id)
        will = aiomqtt.Will(status_topic, self._status_bytes("offline", last_seq),
                            qos=QOS_AT_LEAST_ONCE, retain=True)
        # A persistent session: commands the center sends while this gateway
        # is disconnected wait at the broker for it.
        client = new_client(self._mqtt, client_id=f"posgw-{self._gateway_id}", persistent=True,
                            will=will, max_inflight=self._window,
                            timeout_s=self._publish_timeout_s, logger=MQTT_LOGGER)
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._connect_timeout_s):
                await stack.enter_async_context(client)
            await client.publish(status_topic, self._status_bytes("online", last_seq),
                                 qos=QOS_AT_LEAST_ONCE, retain=True)
            if self.on_command is not None:
                await client.subscribe(command_topic(self._mqtt.topic_prefix, self._branch_id),
                                       qos=QOS_AT_LEAST_ONCE)
            self._backoff.reset()
            self.connections += 1
            self.connected.set()
            log.info("MQTT connected to %s:%d", self._mqtt.host, self._mqtt.port)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(_until_disconnected(client, self.on_command))
                    group.create_task(self._pump(client))
            except asyncio.CancelledError:
                await self._say_goodbye(client, status_topic)
                raise

    async def _pump(self, client: aiomqtt.Client) -> None:
        """A sliding window of publishes; acked rows marked delivered in batches.

        A new publish starts as soon as any in flight is acked (waiting for a
        whole window to drain cost two thirds of the throughput). Tasks start
        in creation order, so paho queues the PUBLISH packets in seq order,
        and MQTT keeps that order per topic (MQTT 5 §4.6).
        """
        acked: list[int] = []
        unacked: dict[int, float] = {}  # seq -> monotonic publish time, oldest first
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._flush_periodically(acked))
                group.create_task(self._watch_unacked(unacked))
                await self._feed(client, group, acked, unacked)
        finally:
            # Runs on failure too: what was acked is delivered, the rest stays pending.
            await asyncio.shield(self._flush(acked))

    async def _feed(self, client: aiomqtt.Client, group: asyncio.TaskGroup,
                    acked: list[int], unacked: dict[int, float]) -> None:
        slots = asyncio.Semaphore(self._window)
        after_seq = 0  # rows up to here are delivered or in flight
        self._read_table = True  # a new connection: start from the table
        while True:
            self._wake.clear()  # before reading: a commit after the read wakes us again
            rows = await self._next_rows(after_seq)
            for row in rows:
                await slots.acquire()
                unacked[row.seq] = self._clock.monotonic()
                group.create_task(self._publish_one(client, row, acked, unacked, slots))
            if rows:
                after_seq = rows[-1].seq
                continue
            try:
                async with asyncio.timeout(self._poll_interval_s):
                    await self._wake.wait()
            except TimeoutError:
                self._read_table = True  # the poll: rows another writer may have added

    async def _next_rows(self, after_seq: int) -> list[PendingEvent]:
        """The next rows after `after_seq`: what the committer just handed
        over when it continues there (FreshEvents), else from the table."""
        rows = self._fresh.take(after_seq, self._window)
        if rows is None or (not rows and self._read_table):
            self._read_table = False
            limit = max(self._window, TABLE_READ_ROWS)
            rows = await asyncio.to_thread(self._store.pending_outbox, limit, after_seq)
            # A full read: the table may hold more; the next round reads it too
            # (as it does when a wake-up without events came during this read).
            self._read_table = self._read_table or len(rows) == limit
        return rows

    async def _publish_one(self, client: aiomqtt.Client, row: PendingEvent, acked: list[int],
                           unacked: dict[int, float], slots: asyncio.Semaphore) -> None:
        try:
            payload = row.wire or self.seal(row.payload or {})
            # No timeout per publish: aiomqtt's costs a task and a timer each
            # (without them the forwarder publishes 10-15% more events per
            # second); `_watch_unacked` bounds every publish instead.
            await client.publish(row.topic, payload, qos=QOS_AT_LEAST_ONCE, retain=row.retain,
                                 timeout=math.inf)
            acked.append(row.seq)
        finally:
            del unacked[row.seq]
            slots.release()

    async def _watch_unacked(self, unacked: dict[int, float]) -> None:
        """A connection whose broker stops acknowledging is given up (and
        reconnected) once the oldest publish waited `publish_timeout_s`."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            oldest = next(iter(unacked.values()), None)
            waited = 0.0 if oldest is None else self._clock.monotonic() - oldest
            if waited > self._publish_timeout_s:
                raise aiomqtt.MqttError(f"no PUBACK for {waited:.0f} s; reconnecting")

    async def _flush_periodically(self, acked: list[int]) -> None:
        while True:
            await asyncio.sleep(MARK_INTERVAL_S)  # a timer: batches the delivered marks
            await self._flush(acked)

    async def _flush(self, acked: list[int]) -> None:
        """Mark what the broker acked as delivered (one write for many rows)."""
        if not acked:
            return
        ids = acked[:]
        del acked[:len(ids)]
        await asyncio.to_thread(self._store.mark_delivered, ids, self._clock.utc_now())
        self.delivered_total += len(ids)

    async def _say_goodbye(self, client: aiomqtt.Client, topic: str) -> None:
        """A clean disconnect suppresses the Will: publish "offline" ourselves."""
        last_seq = await asyncio.to_thread(self._store.max_seq)
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                await client.publish(topic, self._status_bytes("offline", last_seq),
                                     qos=QOS_AT_LEAST_ONCE, retain=True)

    def _status_bytes(self, state: str, last_seq: int) -> bytes:
        payload: dict[str, Any] = gateway_status(
            state, last_seq=last_seq, event_id=new_event_id(), branch_id=self._branch_id,
            gateway_id=self._gateway_id, occurred_at=self._clock.utc_now())
        return self._signer.seal(payload)


async def _until_disconnected(client: aiomqtt.Client, on_command: CommandCallback | None) -> None:
    """Hands center commands over; ends with MqttError when the link is lost.

    aiomqtt reports a lost connection through its message iterator only:
    pending QoS 1 publishes would otherwise wait for their timeout; this
    raises at once, and the TaskGroup cancels the pump.
    """
    async for message in client.messages:
        if on_command is not None and isinstance(message.payload, bytes):
            await on_command(message.payload)
    raise aiomqtt.MqttError("message iterator ended")
