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
of them gets a redelivery. A payload that fails verification goes to the
quarantine table with the reason, never into the events table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from center.config import CenterMqtt
from center.db import CenterStore, ReplayedSeq
from center.mqtt import QOS_AT_LEAST_ONCE, ack, new_client
from center.verify import BadPayload, SignatureVerifier

__all__ = ["CenterIngest", "CenterMqtt"]

log = logging.getLogger(__name__)

TX_SCHEMA = "tx-event.v1"
TX_STATUSES = frozenset({"settled", "frozen", "reversed", "voided", "refund", "declined"})
TEXT_FIELDS = ("event_id", "branch_id", "gateway_id", "status", "kind", "terminal_id", "stan",
               "currency", "occurred_at")
INTEGER_FIELDS = ("seq", "amount_minor")
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_EVENT_AGE = timedelta(days=30)
OPTIONAL_TEXT_FIELDS = ("merchant_id", "rrn", "auth_code", "response_code", "pan_masked",
                        "pan_token", "entry_mode")
RETRY_DELAY_S = 0.5  # the center's own reconnect pause (it may not import drivers/)
RETRY_DELAY_CAP_S = 30.0
CONNECT_TIMEOUT_S = 10.0


class CenterIngest:
    def __init__(self, store: CenterStore, verifier: SignatureVerifier,
                 mqtt: CenterMqtt) -> None:
        self._store = store
        self._verifier = verifier
        self._mqtt = mqtt
        self.subscribed = asyncio.Event()
        self.ingested = 0
        self.duplicates = 0
        self.quarantined = 0
        #: A gateway clock this far ahead is wrong (or the payload forged).
        self.max_clock_skew = MAX_CLOCK_SKEW
        #: Longer than any outage the outbox is meant to ride out.
        self.max_event_age = MAX_EVENT_AGE
        self.connections = 0  # successful subscriptions so far

    async def run(self) -> None:
        """Ingest until cancelled, reconnecting with backoff."""
        delay = RETRY_DELAY_S
        while True:
            connections = self.connections
            try:
                await self._session()
            except (aiomqtt.MqttError, TimeoutError) as exc:
                log.warning("center MQTT %s:%d: %s; reconnecting in %.1f s",
                            self._mqtt.host, self._mqtt.port, exc, delay)
            except SQLAlchemyError as exc:
                # Nothing unstored was acknowledged: the broker redelivers.
                log.error("center database: %s; reconnecting in %.1f s",
                          type(exc).__name__, delay)
            self.subscribed.clear()
            # A session that got as far as subscribing resets the backoff.
            delay = RETRY_DELAY_S if self.connections > connections else min(
                RETRY_DELAY_CAP_S, delay * 2)
            await asyncio.sleep(delay)

    async def handle(self, topic: str, raw: bytes) -> str:
        """Ingest one message; returns "ingested", "duplicate" or "quarantined".

        Returns only once the outcome is committed; a database outage raises.
        """
        try:
            payload = self._checked(raw)
            inserted = await asyncio.to_thread(self._store.insert_event, topic, payload)
        except (BadPayload, ReplayedSeq) as exc:
            return await self._quarantine(topic, str(exc), raw)
        except (DataError, IntegrityError) as exc:
            # A signed event the table cannot hold (a value too long for
            # PostgreSQL, say): keep it aside, or it would be redelivered forever.
            return await self._quarantine(topic, f"not storable: {type(exc.orig).__name__}", raw)
        if inserted:
            self.ingested += 1
            return "ingested"
        self.duplicates += 1
        return "duplicate"

    async def _quarantine(self, topic: str, reason: str, raw: bytes) -> str:
        await asyncio.to_thread(self._store.quarantine, topic, reason, raw)
        self.quarantined += 1
        log.warning("quarantined a payload on %s: %s", topic, reason)
        return "quarantined"

    def _checked(self, raw: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadPayload("not JSON") from None
        self._verifier.verify(payload)
        if payload.get("schema") != TX_SCHEMA:
            raise BadPayload(f"schema is not {TX_SCHEMA}")
        if payload.get("status") not in TX_STATUSES:
            raise BadPayload(f"status is not one of {', '.join(sorted(TX_STATUSES))}")
        missing = [name for name in (*TEXT_FIELDS, *INTEGER_FIELDS) if payload.get(name) is None]
        if missing:
            raise BadPayload(f"missing fields: {', '.join(missing)}")
        wrong = [name for name in TEXT_FIELDS if not isinstance(payload[name], str)]
        wrong += [name for name in OPTIONAL_TEXT_FIELDS
                  if not isinstance(payload.get(name), str | None)]
        wrong += [name for name in INTEGER_FIELDS
                  if isinstance(payload[name], bool) or not isinstance(payload[name], int)]
        if wrong:
            raise BadPayload(f"wrong type: {', '.join(wrong)}")
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
        now = datetime.now(UTC)
        if moment > now + self.max_clock_skew:
            raise BadPayload(f"occurred_at is more than {self.max_clock_skew} in the future")
        if moment < now - self.max_event_age:
            raise BadPayload(f"occurred_at is older than {self.max_event_age.days} days")

    async def _session(self) -> None:
        persistent = bool(self._mqtt.client_id)
        client = new_client(self._mqtt, persistent=persistent, manual_ack=True)
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await stack.enter_async_context(client)
            await client.subscribe(self._mqtt.tx_subscription, qos=QOS_AT_LEAST_ONCE)
            self.connections += 1
            self.subscribed.set()
            log.info("center subscribed to %s on %s:%d as %s (%s session)",
                     self._mqtt.tx_subscription, self._mqtt.host, self._mqtt.port,
                     client.identifier, "persistent" if persistent else "clean")
            # When the link drops, messages still queued in memory were never
            # acknowledged: the broker redelivers them to the session, so they
            # are left behind here rather than stored without a PUBACK.
            async for message in client.messages:
                raw = message.payload if isinstance(message.payload, bytes) else b""
                await self.handle(str(message.topic), raw)
                ack(client, message)  # only now: the outcome is committed
