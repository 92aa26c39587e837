"""The center's subscriber: verify, store a batch once per event_id, PUBACK, confirm.

Durability, in order of a message's life:

1. The center keeps a persistent MQTT 5 session (stable client id, clean
   start off, a Session Expiry Interval), so the broker queues what is
   published while the center is down or reconnecting.
2. Messages are taken in batches: the first that arrives and whatever has
   queued behind it, up to `batch_size` (the client's Receive Maximum is
   set above it). Each is verified, the batch is stored in ONE transaction
   (one statement per table), and only after that commit is each message
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
(its signature, the JSON Schema it names, its time) goes to the quarantine
table with the reason, never into the events table.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import SQLAlchemyError

from posgw.center.config import DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_MAX_EVENT_AGE_S
from posgw.center.confirmations import Confirmation, ConfirmationBook
from posgw.center.db import CenterStore
from posgw.center.registry import GatewayTrust
from posgw.center.rows import (
    BatchRefused,
    NotStorable,
    QuarantineRow,
    ReplayedSeq,
    StoreRow,
    StoreUnavailable,
)
from posgw.center.validation import check_against_schema, compiled_schemas
from posgw.center.verify import BadPayload, QuarantineKind, SignatureVerifier
from posgw.drivers.backoff import Backoff
from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.drivers.mqtt import QOS_AT_LEAST_ONCE, MqttConfig, ack, new_client, queued
from posgw.protocols.contract import (
    RECONCILIATION_SCHEMA,
    TX_EVENT_SCHEMA,
    reconciliation_filter,
    shared,
    tx_filter,
)

__all__ = ["BatchResult", "CenterIngest", "Received"]

log = logging.getLogger(__name__)

#: What arrives on the topics the ingest subscribes to: transaction events on
#: `{prefix}/{branch}/{terminal}/tx`, and a gateway's report of a closed batch on
#: `{prefix}/{branch}/{terminal}/reconciliation`, stored in its own table
#: (center_reconciliations), never among the events.
INGESTED_SCHEMAS = frozenset({TX_EVENT_SCHEMA, RECONCILIATION_SCHEMA})
MAX_CLOCK_SKEW = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_S)
MAX_EVENT_AGE = timedelta(seconds=DEFAULT_MAX_EVENT_AGE_S)
CONNECT_TIMEOUT_S = 10.0
#: Messages stored per transaction at most: past a few hundred rows a bigger
#: batch saves little (bench/center.py), and a batch is redelivered whole
#: after a crash.
DEFAULT_BATCH_SIZE = 500
#: Reasons to reload the gateway keys before giving a payload up.
_RETRY_KINDS = frozenset({QuarantineKind.UNREGISTERED, QuarantineKind.BAD_SIGNATURE})


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as it arrived."""

    topic: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class BatchResult:
    outcomes: list[str]  # per message, in order: "ingested", "duplicate" or "quarantined"
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
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
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
        compiled_schemas()  # now, not on the first message
        self.subscribed = asyncio.Event()
        self.ingested = 0
        self.duplicates = 0
        self.quarantined = 0
        self.batches = 0
        self.confirmations = 0  # confirm.v1 messages published
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
        refused = [QuarantineRow(c.message.topic, str(c.refusal), c.refusal.kind.value,
                                 c.message.raw) for c in checked if c.refusal is not None]
        for item in checked:
            if item.refusal is None and item.payload is not None:
                rows.setdefault(str(item.payload["event_id"]),
                                StoreRow(item.message.topic, item.payload, item.message.raw))
        inserted, failed = await asyncio.to_thread(self._store_batch, list(rows.values()),
                                                   refused)
        self.batches += 1
        book = ConfirmationBook(self._mqtt.topic_prefix)
        outcomes = [self._outcome(item, inserted, failed, book) for item in checked]
        confirmations = ([] if self._command_key is None
                         else book.signed(self._command_key, self._clock.utc_now()))
        return BatchResult(outcomes, confirmations)

    def _outcome(self, item: _Checked, inserted: set[str], failed: dict[str, BadPayload],
                 book: ConfirmationBook) -> str:
        refusal = item.refusal
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
        log.warning("quarantined a payload on %s (%s): %s", item.message.topic,
                    refusal.kind.value, refusal)
        return "quarantined"

    def _store_batch(self, rows: list[StoreRow], refused: list[QuarantineRow]
                     ) -> tuple[set[str], dict[str, BadPayload]]:
        """(event_ids inserted now, event_id -> why it could not be stored).
        Blocking: runs in a worker thread, once per batch."""
        writer = self._store.writer()
        try:
            return writer.write(rows, refused), {}
        except BatchRefused as exc:
            log.info("a batch of %d hit %s: storing it one payload at a time", len(rows), exc)
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
        writer.quarantine(refused + [
            QuarantineRow(by_id[event_id].topic, str(why), why.kind.value, by_id[event_id].raw)
            for event_id, why in failed.items()])
        return inserted, failed

    async def _verified(self, messages: Sequence[Received]) -> list[_Checked]:
        """Each message checked. With a GatewayTrust, the keys are reloaded when
        due, and once more before a payload of an unknown gateway or with a
        failing signature is given up on (a registration or rotation since)."""
        trust = self._verifier if isinstance(self._verifier, GatewayTrust) else None
        if trust is not None and trust.stale():
            await asyncio.to_thread(trust.reload)
        checked = [self._check(message) for message in messages]
        if trust is None or not any(_retry(item) for item in checked):
            return checked
        await asyncio.to_thread(trust.reload)
        return [self._check(item.message) if _retry(item) else item for item in checked]

    def _check(self, message: Received) -> _Checked:
        try:
            payload = json.loads(message.raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _Checked(message, None, BadPayload("not JSON", QuarantineKind.NOT_JSON))
        try:
            self._verifier.verify(payload)
        except BadPayload as exc:
            return _Checked(message, None, exc)
        try:
            check_against_schema(payload, INGESTED_SCHEMAS)
            self._check_topic(message.topic, payload)
            self._check_time(payload["occurred_at"])
        except BadPayload as exc:
            # A payload on another branch's topic gets no confirmation: whoever
            # put it there was not necessarily the gateway that signed it.
            wrong_place = exc.kind is QuarantineKind.WRONG_BRANCH
            return _Checked(message, None if wrong_place else dict(payload), exc)
        return _Checked(message, dict(payload), None)

    @staticmethod
    def _check_topic(topic: str, payload: dict[str, Any]) -> None:
        """The topic names the payload's own branch and terminal: a gateway's
        ACL lets it publish only under its branch, and the center checks the
        same again (issue 17, finding 6)."""
        # The prefix is the subscription's: the broker delivers nothing else.
        levels = topic.split("/")
        if len(levels) < 3:
            raise BadPayload("topic is not {prefix}/{branch}/{terminal}/{kind}",
                             QuarantineKind.WRONG_BRANCH)
        branch, terminal = levels[-3], levels[-2]
        if branch != payload.get("branch_id") or terminal != payload.get("terminal_id"):
            raise BadPayload(f"published on branch {_shown_level(branch)} terminal "
                             f"{_shown_level(terminal)}, not its own branch and terminal",
                             QuarantineKind.WRONG_BRANCH)

    def _check_time(self, occurred_at: str) -> None:
        """Reject times from the future (beyond clock skew) or older than the
        outbox could plausibly have held an event: a replayed or forged
        payload, or a gateway whose clock is wrong."""
        try:
            moment = datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
        except ValueError:
            raise BadPayload("occurred_at is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise BadPayload("occurred_at has no time zone")
        now = self._clock.utc_now()
        if moment > now + self.max_clock_skew:
            raise BadPayload(f"occurred_at is more than {_span(self.max_clock_skew)} in the "
                             "future (max_clock_skew_s)", QuarantineKind.FUTURE)
        if moment < now - self.max_event_age:
            raise BadPayload(f"occurred_at is older than {_span(self.max_event_age)} "
                             "(max_event_age_s)", QuarantineKind.STALE)

    async def _session(self) -> None:
        persistent = bool(self._mqtt.client_id)
        client = new_client(self._mqtt, persistent=persistent, manual_ack=True,
                            receive_maximum=min(2 * self.batch_size, 65_535))
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
            # Two stages: while one batch is being committed (a worker thread
            # and PostgreSQL), the next is verified here. PUBACKs stay in
            # arrival order: a batch is finished only after the one before.
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


def _shown_level(level: str) -> str:
    """A topic level quoted in a reason when it looks like an identifier
    (topics are chosen by whoever publishes)."""
    if 0 < len(level) <= 32 and all(c.isascii() and (c.isalnum() or c in "-_.") for c in level):
        return level
    return "(not an identifier)"


def _retry(item: _Checked) -> bool:
    return item.refusal is not None and item.refusal.kind in _RETRY_KINDS


def _raw(message: aiomqtt.Message) -> bytes:
    return message.payload if isinstance(message.payload, bytes) else b""


def subscription_filters(mqtt: MqttConfig) -> tuple[str, ...]:
    """The ingest's subscriptions: every terminal's transaction events and
    batch reports, shared by `share_group` when one is set."""
    return tuple(shared(topic_filter, mqtt.share_group)
                 for topic_filter in (tx_filter(mqtt.topic_prefix),
                                      reconciliation_filter(mqtt.topic_prefix)))


def _span(span: timedelta) -> str:
    """A tolerance as an operator wrote it: 30 days, 5 min, 90 s."""
    seconds = int(span.total_seconds())
    if seconds % 86_400 == 0:
        days = seconds // 86_400
        return f"{days} day{'' if days == 1 else 's'}"
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
