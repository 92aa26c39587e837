"""The center's subscriber: verify, insert once per event_id, then PUBACK.

Durability, in order of the message's life:

1. The center keeps a persistent MQTT 5 session (stable client id, clean
   start off, a Session Expiry Interval), so the broker queues what is
   published while the center is down or reconnecting.
2. Each message is verified and inserted, and only after the insert has
   been committed is its PUBACK sent (manual acknowledgement). A crash in
   between leaves the message unacknowledged: the broker redelivers it to
   the session, and the unique event_id turns the second insert into a
   no-op. A quarantined payload is acknowledged once its quarantine row is
   committed.
3. An error of the database (PostgreSQL down, disk full) acknowledges
   nothing: the connection is dropped and remade with backoff, and the
   broker redelivers.

Messages are handled one at a time, in arrival order, so PUBACKs go out in
the order the PUBLISH packets came, as MQTT 5 §4.6 asks.

With a shared subscription (`$share/<group>/...`) several center processes
split the stream; the unique event_id makes the result the same whichever
of them gets a redelivery. A payload that fails verification (its
signature, the JSON Schema it names, its time) goes to the quarantine table
with the reason, never into the events table.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import aiomqtt
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from posgw.center.config import DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_MAX_EVENT_AGE_S
from posgw.center.db import CenterStore, ReplayedSeq
from posgw.center.registry import GatewayTrust
from posgw.center.validation import check_against_schema, compiled_schemas
from posgw.center.verify import BadPayload, QuarantineKind, SignatureVerifier
from posgw.drivers.backoff import Backoff
from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.drivers.mqtt import QOS_AT_LEAST_ONCE, MqttConfig, ack, new_client
from posgw.protocols.contract import (
    RECONCILIATION_SCHEMA,
    TX_EVENT_SCHEMA,
    reconciliation_filter,
    shared,
    tx_filter,
)

__all__ = ["CenterIngest"]

log = logging.getLogger(__name__)

#: What arrives on the topics the ingest subscribes to: transaction events on
#: `{prefix}/{branch}/{terminal}/tx`, and a gateway's report of a closed batch on
#: `{prefix}/{branch}/{terminal}/reconciliation`, stored in its own table
#: (center_reconciliations), never among the events.
INGESTED_SCHEMAS = frozenset({TX_EVENT_SCHEMA, RECONCILIATION_SCHEMA})
MAX_CLOCK_SKEW = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_S)
MAX_EVENT_AGE = timedelta(seconds=DEFAULT_MAX_EVENT_AGE_S)
CONNECT_TIMEOUT_S = 10.0


class CenterIngest:
    def __init__(self, store: CenterStore, verifier: SignatureVerifier | GatewayTrust,
                 mqtt: MqttConfig, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW,
                 max_event_age: timedelta = MAX_EVENT_AGE, clock: Clock = SYSTEM_CLOCK,
                 backoff: Backoff | None = None) -> None:
        """`verifier`: a fixed set of keys, or a GatewayTrust that follows
        registrations and revocations in the database (center/registry.py)."""
        self._store = store
        self._verifier = verifier
        self._mqtt = mqtt
        self._clock = clock
        self._backoff = backoff or Backoff()
        compiled_schemas()  # now, not on the first message
        self.subscribed = asyncio.Event()
        self.ingested = 0
        self.duplicates = 0
        self.quarantined = 0
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
            except SQLAlchemyError as exc:
                # Nothing unstored was acknowledged: the broker redelivers.
                log.error("center database: %s; reconnecting", type(exc).__name__)
            self.subscribed.clear()
            await asyncio.sleep(self._backoff.next_delay())

    async def handle(self, topic: str, raw: bytes) -> str:
        """Ingest one message; returns "ingested", "duplicate" or "quarantined".

        Returns only once the outcome is committed; a database outage raises.
        """
        try:
            payload = await self._verified(raw)
            insert = (self._store.insert_reconciliation
                      if payload["schema"] == RECONCILIATION_SCHEMA else self._store.insert_event)
            inserted = await asyncio.to_thread(insert, topic, payload)
        except BadPayload as exc:
            return await self._quarantine(topic, str(exc), raw, exc.kind)
        except ReplayedSeq as exc:
            return await self._quarantine(topic, str(exc), raw, QuarantineKind.REPLAY)
        except (DataError, IntegrityError) as exc:
            # A signed event the table cannot hold (a value too long for
            # PostgreSQL, say): keep it aside, or it would be redelivered forever.
            return await self._quarantine(topic, f"not storable: {type(exc.orig).__name__}", raw,
                                          QuarantineKind.NOT_STORABLE)
        if inserted:
            self.ingested += 1
            return "ingested"
        self.duplicates += 1
        return "duplicate"

    async def _quarantine(self, topic: str, reason: str, raw: bytes,
                          kind: QuarantineKind) -> str:
        await asyncio.to_thread(self._store.quarantine, topic, reason, raw, kind.value)
        self.quarantined += 1
        self.quarantined_by_kind[kind.value] += 1
        log.warning("quarantined a payload on %s (%s): %s", topic, kind.value, reason)
        return "quarantined"

    async def _verified(self, raw: bytes) -> dict[str, Any]:
        """The checked payload. With a GatewayTrust, the keys are reloaded when
        due, and once more before a payload of an unknown gateway or with a
        failing signature is given up on (a registration or rotation since)."""
        trust = self._verifier if isinstance(self._verifier, GatewayTrust) else None
        if trust is not None and trust.stale():
            await asyncio.to_thread(trust.reload)
        try:
            return self._checked(raw)
        except BadPayload as exc:
            retry = exc.kind in (QuarantineKind.UNREGISTERED, QuarantineKind.BAD_SIGNATURE)
            if trust is None or not retry:
                raise
        await asyncio.to_thread(trust.reload)
        return self._checked(raw)

    def _checked(self, raw: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadPayload("not JSON", QuarantineKind.NOT_JSON) from None
        self._verifier.verify(payload)
        check_against_schema(payload, INGESTED_SCHEMAS)
        self._check_time(payload["occurred_at"])
        return dict(payload)

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
        client = new_client(self._mqtt, persistent=persistent, manual_ack=True)
        subscriptions = subscription_filters(self._mqtt)
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await stack.enter_async_context(client)
            for topic_filter in subscriptions:
                await client.subscribe(topic_filter, qos=QOS_AT_LEAST_ONCE)
            self._backoff.reset()
            self.connections += 1
            self.subscribed.set()
            log.info("center subscribed to %s on %s:%d as %s (%s session)",
                     ", ".join(subscriptions), self._mqtt.host, self._mqtt.port,
                     client.identifier, "persistent" if persistent else "clean")
            # When the link drops, messages still queued in memory were never
            # acknowledged: the broker redelivers them to the session, so they
            # are left behind here rather than stored without a PUBACK.
            async for message in client.messages:
                raw = message.payload if isinstance(message.payload, bytes) else b""
                await self.handle(str(message.topic), raw)
                ack(client, message)  # only now: the outcome is committed


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
