"""`OutboxForwarder`: the outbox table to the broker, QoS 1, nothing lost.

One reconnect loop, a fresh client per attempt, the one Backoff policy.
On each connection: publish the retained birth (the Last Will is the
matching death), subscribe to the center's confirmations, then pump the
outbox in seq order — which is in order per terminal — in windows of up to
`window` publishes in flight, control rows (every topic but `tx`) read
ahead of a `tx` backlog. A successful PUBACK marks a row published; the
center's signed confirmation marks it done (DESIGN rule 2: a broker's
PUBACK is not the center's). A published row the center has not confirmed
within `confirm_timeout_s` is published again, same `event_id`, same
bytes; the center dedupes by `event_id`. Without a center key there is
nothing to verify confirmations with: the PUBACK marks a row done, as
before confirmations existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import aiomqtt

from posgw.drivers.backoff import Backoff
from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.drivers.mqtt import QOS_AT_LEAST_ONCE, MqttConfig, new_client
from posgw.gateway.forward.confirmations import ConfirmationReader
from posgw.gateway.forward.events import new_event_id
from posgw.gateway.forward.fresh import FreshEvents
from posgw.gateway.forward.inbox import ConfirmationInbox
from posgw.gateway.forward.puback import FIRST_FAILURE_CODE, PubackWatch
from posgw.gateway.forward.silence import OutboxSnapshot
from posgw.gateway.security.signing import PayloadSigner
from posgw.gateway.store.store import PendingEvent, Store
from posgw.protocols.contract import (
    TopicKind,
    awaits_confirmation,
    command_topic,
    confirm_topic,
    gateway_status,
    gateway_status_topic,
)

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
#: `[forward] confirm_timeout_s`: sized to a center briefly slow (a deploy, a
#: PostgreSQL checkpoint, a batch behind a backlog), not to a broker crash
#: going unnoticed for hours; republishing sooner would mostly send the
#: center repeats of what it is still storing.
DEFAULT_CONFIRM_TIMEOUT_S = 60.0
#: Control rows (command replies, statuses, cases) read per round ahead of `tx`.
CONTROL_READ_ROWS = 64
#: The retained "online" status is published again this often when the
#: outbox counts it carries changed (the center's fleet view).
STATUS_REFRESH_S = 30.0


class OutboxForwarder:
    def __init__(self, store: Store, mqtt: MqttConfig, signer: PayloadSigner,
                 clock: Clock = SYSTEM_CLOCK, *, branch_id: str, gateway_id: str,
                 window: int = DEFAULT_WINDOW, backoff: Backoff | None = None,
                 poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
                 connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
                 publish_timeout_s: float = DEFAULT_PUBLISH_TIMEOUT_S,
                 confirmations: ConfirmationReader | None = None,
                 confirm_timeout_s: float = DEFAULT_CONFIRM_TIMEOUT_S) -> None:
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
        self._inbox = None if confirmations is None else ConfirmationInbox(
            store, confirmations, clock, confirm_timeout_s)
        self._refused: set[int] = set()  # seqs whose PUBACK carried a failure code
        self._refused_backoff = Backoff()
        self._refused_retry_at = 0.0
        self._ahead: set[int] = set()  # control seqs published ahead of the cursor
        self._control_after = 0
        self._urgent: list[PendingEvent] = []  # control rows just committed, not started
        self.connected = asyncio.Event()
        #: PUBACKed (successfully) since start.
        self.delivered_total = 0
        self.republished_total = 0
        #: The daemon's last count (heartbeat), carried by the retained status.
        self.outbox: OutboxSnapshot | None = None
        #: Receives each message on the branch's `cmd` topic (set by the daemon).
        self.on_command: CommandCallback | None = None
        self.connections = 0

    def seal(self, payload: dict[str, Any]) -> bytes:
        """The bytes published for `payload`: signed canonical JSON. The group
        committer calls this (as its `seal`) once the seq is set."""
        return self._signer.seal(payload)

    @property
    def confirming(self) -> bool:
        """True when a row is done only once the center confirmed it."""
        return self._inbox is not None

    @property
    def confirmed_total(self) -> int:
        """Rows the center's confirmations finished since start."""
        return 0 if self._inbox is None else self._inbox.confirmed_total

    @property
    def confirmations_refused(self) -> int:
        return 0 if self._inbox is None else self._inbox.refused_total

    @property
    def center_silent(self) -> bool:
        """As the daemon's last count found it (`[forward] center_silent_after_s`)."""
        return self.outbox is not None and self.outbox.center_silent

    def center_silent_for(self) -> float:
        """Seconds since the center last confirmed anything (or since start)."""
        return 0.0 if self._inbox is None else self._inbox.silent_for()

    def wake(self, events: Sequence[PendingEvent] = ()) -> None:
        """New rows were committed: publish now (GroupCommitter's on_commit).
        Without `events`, rows were written elsewhere: read the table."""
        if events:
            self._fresh.add(events)
            # A command reply or a status: published before any further row
            # of a backlog (the round under way stops starting them).
            self._urgent.extend(event for event in events if _is_control(event))
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
        self.outbox = await asyncio.to_thread(self._count_outbox)  # for the birth
        status_topic = gateway_status_topic(self._mqtt.topic_prefix, self._branch_id)
        will = aiomqtt.Will(status_topic, self._status_bytes("offline", last_seq),
                            qos=QOS_AT_LEAST_ONCE, retain=True)
        # A persistent session: commands the center sends while this gateway
        # is disconnected wait at the broker for it.
        client = new_client(self._mqtt, client_id=f"posgw-{self._gateway_id}", persistent=True,
                            will=will, max_inflight=self._window,
                            timeout_s=self._publish_timeout_s, logger=MQTT_LOGGER)
        publisher = PubackWatch(client)
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._connect_timeout_s):
                await stack.enter_async_context(client)
            await client.publish(status_topic, self._status_bytes("online", last_seq),
                                 qos=QOS_AT_LEAST_ONCE, retain=True)
            if self.on_command is not None:
                await client.subscribe(command_topic(self._mqtt.topic_prefix, self._branch_id),
                                       qos=QOS_AT_LEAST_ONCE)
            if self._inbox is not None:  # before pumping: no confirmation is missed
                await client.subscribe(self._confirm_topic(), qos=QOS_AT_LEAST_ONCE)
                self._inbox.new_connection()
            self._backoff.reset()
            self.connections += 1
            self.connected.set()
            log.info("MQTT connected to %s:%d", self._mqtt.host, self._mqtt.port)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._until_disconnected(client))
                    group.create_task(self._pump(publisher))
                    group.create_task(self._refresh_status(client, status_topic))
            except asyncio.CancelledError:
                await self._say_goodbye(client, status_topic)
                raise

    async def _pump(self, publisher: PubackWatch) -> None:
        """A sliding window of publishes; acked rows marked in batches.

        A new publish starts as soon as any in flight is acked (waiting for a
        whole window to drain cost two thirds of the throughput). Tasks start
        in creation order, so paho queues the PUBLISH packets in seq order,
        and MQTT keeps that order per topic (MQTT 5 §4.6).
        """
        acked = _Acked()
        unacked: dict[int, float] = {}  # seq -> monotonic publish time, oldest first
        slots = asyncio.Semaphore(self._window)
        try:
            async with asyncio.TaskGroup() as group:
                window = _Window(publisher, group, slots, acked, unacked)
                group.create_task(self._flush_periodically(acked))
                group.create_task(self._watch_unacked(unacked))
                if self._inbox is not None:
                    group.create_task(self._republish_unconfirmed(window, self._inbox))
                await self._feed(window)
        finally:
            # Runs on failure too: what was acked is marked, the rest stays pending.
            await asyncio.shield(self._flush(acked))

    async def _feed(self, window: _Window) -> None:
        after_seq = 0  # rows up to here are done, published or in flight
        self._read_table = True  # a new connection: start from the table
        self._ahead.clear()
        self._control_after = 0
        self._refused.clear()
        self._refused_backoff.reset()
        while True:
            self._wake.clear()  # before reading: a commit after the read wakes us again
            after_seq = await self._rewind_refused(window, after_seq)
            for row in self._take_urgent():
                await self._start(window, row)
            rows, cursor = await self._next_rows(after_seq)
            after_seq = await self._start_rows(window, rows, after_seq, cursor)
            if rows:
                continue
            try:
                async with asyncio.timeout(self._poll_interval_s):
                    await self._wake.wait()
            except TimeoutError:
                self._read_table = True  # the poll: rows another writer may have added

    async def _start_rows(self, window: _Window, rows: list[PendingEvent], after_seq: int,
                          cursor: int) -> int:
        """Start `rows` in order; the cursor to continue from. When a control
        row is committed meanwhile (a command's reply behind a backlog of
        thousands), stop before the next backlog row: the cursor stays at the
        last row started, and the next round starts the control row first."""
        started = after_seq
        for row in rows:
            in_order = row.seq not in self._ahead
            # After one backlog row at least: a stream of control rows must
            # slow the backlog down, never stop it.
            if self._urgent and in_order and started > after_seq:
                self._read_table = True
                return started
            await self._start(window, row)
            if in_order:
                started = row.seq
        return cursor

    async def _start(self, window: _Window, row: PendingEvent) -> None:
        if row.seq in window.unacked:  # in flight already (a rewind, a republish round)
            return
        await window.slots.acquire()
        window.unacked[row.seq] = self._clock.monotonic()
        window.group.create_task(self._publish_one(window, row))

    async def _next_rows(self, after_seq: int) -> tuple[list[PendingEvent], int]:
        """The next rows after `after_seq`, and the new cursor: what the
        committer just handed over when it continues there (FreshEvents),
        else from the table, control rows first."""
        rows = self._fresh.take(after_seq, self._window)
        if rows is not None and (rows or not self._read_table):
            return self._not_ahead(rows), (rows[-1].seq if rows else after_seq)
        self._read_table = False
        control = await asyncio.to_thread(
            self._store.pending_outbox, CONTROL_READ_ROWS, max(after_seq, self._control_after),
            unpublished_only=self.confirming, control_only=True)
        limit = max(self._window, TABLE_READ_ROWS)
        rows = await asyncio.to_thread(self._store.pending_outbox, limit, after_seq,
                                       unpublished_only=self.confirming)
        # A full read: the table may hold more; the next round reads it too
        # (as it does when a wake-up without events came during this read).
        self._read_table = self._read_table or len(rows) == limit
        ahead = [row for row in control
                 if rows and row.seq > rows[-1].seq and row.seq not in self._ahead]
        self._ahead.update(row.seq for row in ahead)
        if ahead:
            self._control_after = ahead[-1].seq
        return ahead + self._not_ahead(rows), (rows[-1].seq if rows else after_seq)

    def _take_urgent(self) -> list[PendingEvent]:
        """The control rows committed since the last round, to start ahead of
        the cursor (and skipped when a read reaches them)."""
        urgent, self._urgent = self._urgent, []
        self._ahead.update(row.seq for row in urgent)
        return urgent

    def _not_ahead(self, rows: list[PendingEvent]) -> list[PendingEvent]:
        """`rows` without the control rows already published ahead of them."""
        if not self._ahead or not rows:
            return rows
        kept = [row for row in rows if row.seq not in self._ahead]
        self._ahead = {seq for seq in self._ahead if seq > rows[-1].seq}
        return kept

    async def _rewind_refused(self, window: _Window, after_seq: int) -> int:
        """Rows whose PUBACK carried a failure code are read again, with backoff."""
        if not self._refused or self._clock.monotonic() < self._refused_retry_at:
            return after_seq
        await self._flush(window.acked)
        rewound = min(min(self._refused) - 1, after_seq)
        self._refused.clear()
        self._ahead.clear()
        self._control_after = 0
        self._read_table = True
        return rewound

    async def _publish_one(self, window: _Window, row: PendingEvent) -> None:
        try:
            payload = row.wire or self.seal(row.payload or {})
            # No timeout per publish: `_watch_unacked` bounds every publish.
            code = await window.publisher.publish(row.topic, payload, retain=row.retain)
            if code >= FIRST_FAILURE_CODE:
                self._refuse(row, code)
            elif self.confirming and awaits_confirmation(row.topic):
                window.acked.published.append(row.seq)
            else:
                window.acked.done.append(row.seq)
        finally:
            window.unacked.pop(row.seq, None)
            window.slots.release()

    def _refuse(self, row: PendingEvent, code: int) -> None:
        """A failure PUBACK (0x87 not authorized, 0x97 quota...) is no publish."""
        if not self._refused:
            self._refused_retry_at = self._clock.monotonic() + self._refused_backoff.next_delay()
            log.warning("broker refused event %s on %s (PUBACK reason 0x%02x); sent again "
                        "later", row.event_id, row.topic, code)
        self._refused.add(row.seq)

    async def _republish_unconfirmed(self, window: _Window, inbox: ConfirmationInbox) -> None:
        """Published rows the center has not confirmed in time go out again,
        same event_id and bytes, in seq order; repeated rounds back off."""
        while True:
            await asyncio.sleep(min(inbox.wait_s, inbox.timeout_s) / 4)  # a timer
            await self._flush(window.acked)
            cutoff = self._clock.utc_now() - timedelta(seconds=inbox.wait_s)
            republished, after_seq = 0, 0
            while rows := await asyncio.to_thread(self._store.due_for_republish, cutoff,
                                                  TABLE_READ_ROWS, after_seq):
                after_seq = rows[-1].seq
                for row in rows:
                    republished += row.seq not in window.unacked
                    await self._start(window, row)
            if republished:
                self.republished_total += republished
                inbox.republished(republished)

    async def _watch_unacked(self, unacked: dict[int, float]) -> None:
        """A connection whose broker stops acknowledging is given up (and
        reconnected) once the oldest publish waited `publish_timeout_s`."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            oldest = next(iter(unacked.values()), None)
            waited = 0.0 if oldest is None else self._clock.monotonic() - oldest
            if waited > self._publish_timeout_s:
                raise aiomqtt.MqttError(f"no PUBACK for {waited:.0f} s; reconnecting")

    async def _flush_periodically(self, acked: _Acked) -> None:
        while True:
            await asyncio.sleep(MARK_INTERVAL_S)  # a timer: batches the marks
            await self._flush(acked)

    async def _flush(self, acked: _Acked) -> None:
        """Mark what the broker acked (one write per state for many rows):
        published, or done when nobody will confirm it."""
        for ids, mark in ((acked.published, self._store.mark_published),
                          (acked.done, self._store.mark_delivered)):
            if not ids:
                continue
            taken = ids[:]
            del ids[:len(taken)]
            await asyncio.to_thread(mark, taken, self._clock.utc_now())
            self.delivered_total += len(taken)

    # -- what the center sends ------------------------------------------------------

    async def _until_disconnected(self, client: aiomqtt.Client) -> None:
        """Hands commands and confirmations over; ends with MqttError when the
        link is lost.

        aiomqtt reports a lost connection through its message iterator only:
        pending QoS 1 publishes would otherwise wait for their timeout; this
        raises at once, and the TaskGroup cancels the pump.
        """
        confirms = self._confirm_topic()
        async with asyncio.TaskGroup() as group:
            if self._inbox is not None:
                applying = group.create_task(self._inbox.apply_queued())
            async for message in client.messages:
                if not isinstance(message.payload, bytes):
                    continue
                if message.topic.matches(confirms):
                    if self._inbox is not None:
                        await self._inbox.put(message.payload)
                elif self.on_command is not None:
                    await self.on_command(message.payload)
            if self._inbox is not None:
                applying.cancel()
        raise aiomqtt.MqttError("message iterator ended")

    def _confirm_topic(self) -> str:
        return confirm_topic(self._mqtt.topic_prefix, self._branch_id, self._gateway_id)

    async def _say_goodbye(self, client: aiomqtt.Client, topic: str) -> None:
        """A clean disconnect suppresses the Will: publish "offline" ourselves."""
        last_seq = await asyncio.to_thread(self._store.max_seq)
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                await client.publish(topic, self._status_bytes("offline", last_seq),
                                     qos=QOS_AT_LEAST_ONCE, retain=True)

    def _count_outbox(self) -> OutboxSnapshot:
        stats = self._store.outbox_stats()
        return OutboxSnapshot(stats.pending, stats.published,
                              stats.oldest_age_s(self._clock.utc_now()), self.center_silent)

    async def _refresh_status(self, client: aiomqtt.Client, topic: str) -> None:
        """The retained birth again, when the outbox counts it carries changed."""
        sent = self.outbox
        while True:
            await asyncio.sleep(STATUS_REFRESH_S)  # a timer
            if self.outbox == sent:
                continue
            sent = self.outbox
            last_seq = await asyncio.to_thread(self._store.max_seq)
            await client.publish(topic, self._status_bytes("online", last_seq),
                                 qos=QOS_AT_LEAST_ONCE, retain=True)

    def _status_bytes(self, state: str, last_seq: int) -> bytes:
        counted = self.outbox if state == "online" else None  # a Will is stale when sent
        payload: dict[str, Any] = gateway_status(
            state, last_seq=last_seq, event_id=new_event_id(), branch_id=self._branch_id,
            gateway_id=self._gateway_id, occurred_at=self._clock.utc_now(),
            outbox=None if counted is None else counted.as_payload())
        return self._signer.seal(payload)


class _Acked:
    """Seqs the broker acknowledged, not yet marked in the table."""

    def __init__(self) -> None:
        self.published: list[int] = []  # to wait for the center's confirmation
        self.done: list[int] = []  # done at PUBACK: nobody confirms them


class _Window:
    """What the publishing tasks of one connection share."""

    def __init__(self, publisher: PubackWatch, group: asyncio.TaskGroup,
                 slots: asyncio.Semaphore, acked: _Acked, unacked: dict[int, float]) -> None:
        self.publisher = publisher
        self.group = group
        self.slots = slots
        self.acked = acked
        self.unacked = unacked


def _is_control(event: PendingEvent) -> bool:
    """A row read ahead of a `tx` backlog (Store.pending_outbox's control_only)."""
    return not event.topic.endswith(f"/{TopicKind.TX}")
