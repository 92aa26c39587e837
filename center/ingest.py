"""The center's subscriber: verify, store a batch once per event_id, PUBACK, confirm.

Durability, in order of a message's life:

1. The center keeps a persistent MQTT 5 session (stable client id, clean
   start off, a Session Expiry Interval), so the broker queues what is
   published while the center is down or reconnecting.
2. Messages are taken in batches: the first that arrives and whatever has
   queued behind it, up to `batch_size` (the client's Receive Maximum
   covers three batches: one committing, one verifying, one arriving).
   Each is verified, the batch is stored in ONE transaction (one
   statement per table), and only after that commit is each message
   PUBACKed, in arrival order (MQTT 5 §4.6), by manual acknowledgement. A
   crash in between leaves the batch unacknowledged: the broker redelivers
   it to the session, and the unique event_id turns the second insert into
   a no-op. A batch that hits another constraint (a replayed seq, a value
   the table cannot hold) is stored again one payload at a time, so only
   the offending one is quarantined.
3. Then, with a command key, each gateway that sent events in the batch is
   told which of them the center now holds or quarantined
   (center/confirmations.py): only then does the gateway forget them. A
   crash before that costs a resend, which is confirmed as a duplicate.
4. An error of the database (PostgreSQL down, disk full) acknowledges
   nothing: the connection is dropped and remade with backoff, and the
   broker redelivers.

With a shared subscription (`$share/<group>/...`, the default) several
center processes split the stream; the unique event_id makes the result the
same whichever of them gets a redelivery. A payload that fails verification
(its signature, the JSON Schema it names, its branch and topic, its time)
goes to the quarantine table with the reason, never into the events table;
at most `quarantine_rows_per_source` rows per topic branch, the rest only
counted (center/quarantine_cap.py).

Terminal statuses, cases and command replies are verified the same way and
their seq is recorded, in the batch's transaction: with the stored events
it shows which of a gateway's seqs never arrived (center/seq_gaps.py).
Cases and replies are also kept, in the same transaction, in tables of
their own (center/case_records.py): the console's cases desk reads them;
of terminal and gateway statuses the latest of each is kept
(center/fleet_status.py): the console's fleet page reads them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import SQLAlchemyError

from posgw.center.checks import check_time, check_topic, shown_topic
from posgw.center.config import DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_MAX_EVENT_AGE_S
from posgw.center.confirmations import Confirmation, ConfirmationBook
from posgw.center.db import CenterStore
from posgw.center.fleet_status import STATUS_SCHEMAS, check_status_time
from posgw.center.quarantine_cap import DEFAULT_ROWS_PER_SOURCE, QuarantineCap, topic_source
from posgw.center.registry import GatewayTrust
from posgw.center.rows import (
    MAX_QUARANTINE_TEXT,
    MAX_UNSIGNED_TEXT,
    BatchRefused,
    NotStorable,
    QuarantineRow,
    ReplayedSeq,
    StoreRow,
    StoreUnavailable,
)
from posgw.center.topics import (
    INGESTED_SCHEMAS,
    accepted_on,
    counted_only,
    subscription_filters,
)
from posgw.center.validation import check_against_schema, compiled_schemas
from posgw.center.verify import BadPayload, QuarantineKind, SignatureVerifier
from posgw.drivers.backoff import Backoff
from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.drivers.mqtt import QOS_AT_LEAST_ONCE, MqttConfig, ack, new_client, queued
from posgw.protocols.contract import GATEWAY_STATUS_SCHEMA

__all__ = ["INGESTED_SCHEMAS", "BatchResult", "CenterIngest", "Received",
           "subscription_filters"]

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_S)
MAX_EVENT_AGE = timedelta(seconds=DEFAULT_MAX_EVENT_AGE_S)
CONNECT_TIMEOUT_S = 10.0
#: Messages stored per transaction at most: past a few hundred rows a bigger
#: batch saves little (bench/center.py), and a batch is redelivered whole
#: after a crash.
DEFAULT_BATCH_SIZE = 500
#: Larger payloads are quarantined unread ("oversized"): a signed event is
#: about 1 KB and a reconciliation report a few; the broker's own limit
#: (deploy/mosquitto/posgw.conf max_packet_size) is above this.
MAX_PAYLOAD_BYTES = 64 * 1024
#: Quarantined payloads logged one by one per batch; the rest as one line.
LOGGED_PER_BATCH = 10
#: Batches the broker may have in flight to the center, unacknowledged: one
#: being committed, one being verified, one arriving. With two, the broker
#: stops sending while the first two are in hand and the pipeline stalls.
RECEIVE_WINDOW_BATCHES = 3
#: Reasons to reload the gateway keys before giving a payload up.
_RETRY_KINDS = frozenset({QuarantineKind.UNREGISTERED, QuarantineKind.BAD_SIGNATURE})


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as it arrived."""

    topic: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class BatchResult:
    #: Per message, in order: "ingested", "duplicate", "quarantined" or
    #: "counted" (a status, case or reply: its seq recorded; a case or reply
    #: also kept in its own table, center/case_records.py).
    outcomes: list[str]
    confirmations: list[Confirmation]


@dataclass(frozen=True, slots=True)
class _Checked:
    message: Received
    payload: dict[str, Any] | None  # set once the signature verified
    refusal: BadPayload | None


class CenterIngest:
    def __init__(self, store: CenterStore, verifier: SignatureVerifier | GatewayTrust,
                 mqtt: MqttConfig, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW,
                 max_event_age: timedelta = MAX_EVENT_AGE, clock: Clock = SYSTEM_CLOCK,
                 backoff: Backoff | None = None, command_key: Ed25519PrivateKey | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 quarantine_rows_per_source: int = DEFAULT_ROWS_PER_SOURCE) -> None:
        """`verifier`: a fixed set of keys, or a GatewayTrust that follows
        registrations and revocations in the database (center/registry.py).
        `command_key`: signs the confirmations; without it none are sent."""
        self._store = store
        self._verifier = verifier
        self._mqtt = mqtt
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._command_key = command_key
        self.batch_size = batch_size
        self._cap = QuarantineCap(quarantine_rows_per_source)
        self._logged_in_batch = 0
        #: Quarantined payloads past their source's cap: counted, not kept.
        self.quarantine_overflow = 0
        compiled_schemas()  # now, not on the first message
        self.subscribed = asyncio.Event()
        self.ingested = 0
        self.duplicates = 0
        self.quarantined = 0
        self.batches = 0
        self.confirmations = 0  # confirm.v1 messages published
        self.counted = 0  # statuses, cases and replies: seq recorded, nothing stored
        #: Quarantined payloads of this run by QuarantineKind.
        self.quarantined_by_kind: collections.Counter[str] = collections.Counter()
        #: [center] max_clock_skew_s and max_event_age_s (center/config.py).
        self.max_clock_skew = max_clock_skew
        self.max_event_age = max_event_age
        self.connections = 0  # successful subscriptions so far

    async def run(self) -> None:
        """Ingest until cancelled, reconnecting with backoff (a session that
        got as far as subscribing resets it)."""
        while True:
            try:
                await self._session()
            except (aiomqtt.MqttError, TimeoutError) as exc:
                log.warning("center MQTT %s:%d: %s; reconnecting",
                            self._mqtt.host, self._mqtt.port, exc)
            except (SQLAlchemyError, StoreUnavailable) as exc:
                # Nothing unstored was acknowledged: the broker redelivers.
                log.error("center database: %s; reconnecting", exc)
            self.subscribed.clear()
            await asyncio.sleep(self._backoff.next_delay())

    async def handle(self, topic: str, raw: bytes) -> str:
        """Ingest one message on its own; returns "ingested", "duplicate" or
        "quarantined" once committed (a database outage raises)."""
        return (await self.handle_batch([Received(topic, raw)])).outcomes[0]

    async def handle_batch(self, messages: Sequence[Received]) -> BatchResult:
        """Verify, store in one transaction, count; the outcome of each message
        and the signed confirmations to publish. Returns once committed."""
        return await self._commit(await self._verified(messages))

    async def _commit(self, checked: list[_Checked]) -> BatchResult:
        rows: dict[str, StoreRow] = {}  # by event_id: a copy in the same batch is a duplicate
        refused = [self._quarantine_row(c.message, c.refusal, signed=c.payload is not None)
                   for c in checked if c.refusal is not None]
        seen: list[tuple[str, int]] = []
        recorded: list[dict[str, Any]] = []  # statuses, cases and command replies
        for item in checked:
            if item.refusal is None and item.payload is not None:
                if counted_only(item.payload):
                    if item.payload["schema"] != GATEWAY_STATUS_SCHEMA:
                        seen.append((str(item.payload["gateway_id"]), int(item.payload["seq"])))
                    recorded.append(item.payload)
                    continue
                rows.setdefault(str(item.payload["event_id"]),
                                StoreRow(item.message.topic, item.payload, item.message.raw))
        inserted, failed = await asyncio.to_thread(self._store_batch, list(rows.values()),
                                                   refused, seen, recorded)
        self.batches += 1
        book = ConfirmationBook(self._mqtt.topic_prefix)
        self._logged_in_batch = 0
        outcomes = [self._outcome(item, inserted, failed, book) for item in checked]
        if self._logged_in_batch > LOGGED_PER_BATCH:  # a flood: one line, not thousands
            log.warning("quarantined %d more payloads of this batch (posgw center quarantine)",
                        self._logged_in_batch - LOGGED_PER_BATCH)
        confirmations = ([] if self._command_key is None
                         else book.signed(self._command_key, self._clock.utc_now()))
        return BatchResult(outcomes, confirmations)

    def _outcome(self, item: _Checked, inserted: set[str], failed: dict[str, BadPayload],
                 book: ConfirmationBook) -> str:
        refusal = item.refusal
        if refusal is None and item.payload is not None and counted_only(item.payload):
            self.counted += 1
            return "counted"
        if refusal is None and item.payload is not None:
            event_id = str(item.payload["event_id"])
            refusal = failed.get(event_id)
            if refusal is None:
                book.stored(item.payload)
                if event_id in inserted:
                    inserted.discard(event_id)  # the first copy counts as ingested
                    self.ingested += 1
                    return "ingested"
                self.duplicates += 1
                return "duplicate"
        assert refusal is not None
        if item.payload is not None:  # signed by its gateway: tell it, with the reason
            book.quarantined(item.payload, str(refusal))
        self.quarantined += 1
        self.quarantined_by_kind[refusal.kind.value] += 1
        self._logged_in_batch += 1
        if self._logged_in_batch <= LOGGED_PER_BATCH:
            log.warning("quarantined a payload on %s (%s): %s", shown_topic(item.message.topic),
                        refusal.kind.value, refusal)
        return "quarantined"

    def _quarantine_row(self, message: Received, refusal: BadPayload, *,
                        signed: bool) -> QuarantineRow:
        return QuarantineRow(message.topic, str(refusal), refusal.kind.value, message.raw,
                             source=topic_source(message.topic, self._mqtt.topic_prefix),
                             keep_bytes=MAX_QUARANTINE_TEXT if signed else MAX_UNSIGNED_TEXT)

    def _store_batch(self, rows: list[StoreRow], refused: list[QuarantineRow],
                     seen: list[tuple[str, int]], recorded: list[dict[str, Any]]
                     ) -> tuple[set[str], dict[str, BadPayload]]:
        """(event_ids inserted now, event_id -> why it could not be stored).
        Blocking: runs in a worker thread, once per batch."""
        writer = self._store.writer()
        kept, overflow = self._cap.split(refused, self._store.quarantined_from)
        try:
            written = writer.write(rows, kept, overflow, seen, recorded)
            self.quarantine_overflow += sum(overflow.values())
            return written, {}
        except BatchRefused as exc:
            log.info("a batch of %d hit %s: storing it one payload at a time", len(rows), exc)
        except StoreUnavailable:
            self._cap.forget()
            raise
        inserted: set[str] = set()
        failed: dict[str, BadPayload] = {}
        for row in rows:
            try:
                if writer.write_one(row):
                    inserted.add(row.event_id)
            except ReplayedSeq as exc:
                failed[row.event_id] = BadPayload(str(exc), QuarantineKind.REPLAY)
            except NotStorable as exc:
                # A signed event the table cannot hold: kept aside, or it would
                # be redelivered forever.
                failed[row.event_id] = BadPayload(str(exc), QuarantineKind.NOT_STORABLE)
        by_id = {row.event_id: row for row in rows}
        writer.quarantine(kept + [
            self._quarantine_row(Received(by_id[event_id].topic, by_id[event_id].raw), why,
                                 signed=True)
            for event_id, why in failed.items()], overflow, seen, recorded)
        self.quarantine_overflow += sum(overflow.values())
        return inserted, failed

    async def _verified(self, messages: Sequence[Received]) -> list[_Checked]:
        """Each message checked. With a GatewayTrust, the keys are reloaded when
        due, and once more before a payload of an unknown gateway or with a
        failing signature is given up on (a registration or rotation since)."""
        trust = self._verifier if isinstance(self._verifier, GatewayTrust) else None
        if trust is not None and trust.stale():
            await asyncio.to_thread(trust.reload)
        # In a worker thread: Ed25519 verification releases the GIL, so the
        # loop goes on reading the next messages off the socket meanwhile.
        checked = await asyncio.to_thread(self._check_all, messages)
        if trust is None or not any(_retry(item) for item in checked):
            return checked
        await asyncio.to_thread(trust.reload)
        return [self._check(item.message) if _retry(item) else item for item in checked]

    def _check_all(self, messages: Sequence[Received]) -> list[_Checked]:
        return [self._check(message) for message in messages]

    def _check(self, message: Received) -> _Checked:
        if len(message.raw) > MAX_PAYLOAD_BYTES:
            return _Checked(message, None, BadPayload(
                f"{len(message.raw)} bytes, more than {MAX_PAYLOAD_BYTES}: not read",
                QuarantineKind.OVERSIZED))
        try:
            payload = json.loads(message.raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _Checked(message, None, BadPayload("not JSON", QuarantineKind.NOT_JSON))
        try:
            self._verifier.verify(payload)
        except BadPayload as exc:
            return _Checked(message, None, exc)
        try:
            schema = check_against_schema(payload, accepted_on(message.topic))
            check_topic(message.topic, payload)
            if schema in INGESTED_SCHEMAS:  # what is only counted may be old (retained)
                check_time(payload["occurred_at"], self._clock.utc_now(),
                           self.max_clock_skew, self.max_event_age)
            elif schema in STATUS_SCHEMAS:
                check_status_time(payload)
        except BadPayload as exc:
            # A payload on another branch's topic gets no confirmation: whoever
            # put it there was not necessarily the gateway that signed it.
            wrong_place = exc.kind is QuarantineKind.WRONG_BRANCH
            return _Checked(message, None if wrong_place else dict(payload), exc)
        return _Checked(message, dict(payload), None)

    async def _session(self) -> None:
        persistent = bool(self._mqtt.client_id)
        client = new_client(self._mqtt, persistent=persistent, manual_ack=True,
                            receive_maximum=min(RECEIVE_WINDOW_BATCHES * self.batch_size,
                                                65_535))
        subscriptions = subscription_filters(self._mqtt)
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await stack.enter_async_context(client)
            for topic_filter in subscriptions:
                await client.subscribe(topic_filter, qos=QOS_AT_LEAST_ONCE)
            self._backoff.reset()
            self.connections += 1
            self.subscribed.set()
            log.info("center subscribed to %s on %s:%d as %s (%s session, %s)",
                     ", ".join(subscriptions), self._mqtt.host, self._mqtt.port,
                     client.identifier, "persistent" if persistent else "clean",
                     "confirming" if self._command_key else "NOT confirming: no command key")
            # When the link drops, messages still queued in memory were never
            # acknowledged: the broker redelivers them to the session, so they
            # are left behind here rather than stored without a PUBACK.
            # Three stages: while one batch is being committed (a worker thread
            # and PostgreSQL), the next is verified (another worker thread) and
            # the loop reads the one after. PUBACKs stay in arrival order: a
            # batch is finished only after the one before.
            # (No TaskGroup: its ExceptionGroup would hide the MqttError that
            # run() reconnects on; the one task is owned and reaped here.)
            messages = aiter(client.messages)
            previous: asyncio.Task[None] | None = None
            try:
                while True:
                    first = await anext(messages)
                    batch = [first, *queued(client, self.batch_size - 1)]
                    checked = await self._verified([Received(str(message.topic), _raw(message))
                                                    for message in batch])
                    if previous is not None:
                        await previous
                    previous = asyncio.create_task(self._finish(client, batch, checked))
            finally:
                await _reaped(previous)

    async def _finish(self, client: aiomqtt.Client, batch: list[aiomqtt.Message],
                      checked: list[_Checked]) -> None:
        result = await self._commit(checked)
        for message in batch:
            ack(client, message)  # only now: the batch is committed
        for confirmation in result.confirmations:
            await client.publish(confirmation.topic, confirmation.payload, qos=QOS_AT_LEAST_ONCE)
            self.confirmations += 1


async def _reaped(task: asyncio.Task[None] | None) -> None:
    """Cancel and wait for a batch still being finished when the session ends:
    what it had not acknowledged is redelivered to the session."""
    if task is None:
        return
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        log.warning("center: a batch failed as the session ended: %s", task.exception())


def _retry(item: _Checked) -> bool:
    return item.refusal is not None and item.refusal.kind in _RETRY_KINDS


def _raw(message: aiomqtt.Message) -> bytes:
    return message.payload if isinstance(message.payload, bytes) else b""
