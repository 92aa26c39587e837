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
import collections
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from posgw.center.config import DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_MAX_EVENT_AGE_S, CenterMqtt
from posgw.center.db import CenterStore, ReplayedSeq
from posgw.center.mqtt import QOS_AT_LEAST_ONCE, ack, new_client
from posgw.center.registry import GatewayTrust
from posgw.center.verify import BadPayload, QuarantineKind, SignatureVerifier

__all__ = ["CenterIngest", "CenterMqtt"]

log = logging.getLogger(__name__)

TX_SCHEMA = "tx-event.v1"
#: A gateway's report of a closed batch, on `{prefix}/{branch}/{terminal}/reconciliation`:
#: stored in its own table (center_reconciliations), never among the events.
RECONCILIATION_SCHEMA = "reconciliation.v1"
RECONCILIATION_OUTCOMES = frozenset({"matched", "mismatched"})
RECONCILIATION_TEXT_FIELDS = ("event_id", "branch_id", "gateway_id", "terminal_id", "outcome",
                              "batch_closed_at", "occurred_at")
RECONCILIATION_OBJECT_FIELDS = ("terminal_totals", "ledger_totals", "differences",
                                "missing_at_gateway", "missing_at_terminal",
                                "amount_differences")
TX_STATUSES = frozenset({"settled", "frozen", "reversed", "voided", "refund", "declined"})
TEXT_FIELDS = ("event_id", "branch_id", "gateway_id", "status", "kind", "terminal_id", "stan",
               "currency", "occurred_at")
INTEGER_FIELDS = ("seq", "amount_minor")
MAX_CLOCK_SKEW = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_S)
MAX_EVENT_AGE = timedelta(seconds=DEFAULT_MAX_EVENT_AGE_S)
OPTIONAL_TEXT_FIELDS = ("merchant_id", "rrn", "auth_code", "response_code", "pan_masked",
                        "pan_token", "entry_mode")
RETRY_DELAY_S = 0.5  # the center's own reconnect pause (it may not import drivers/)
RETRY_DELAY_CAP_S = 30.0
CONNECT_TIMEOUT_S = 10.0


class CenterIngest:
    def __init__(self, store: CenterStore, verifier: SignatureVerifier | GatewayTrust,
                 mqtt: CenterMqtt, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW,
                 max_event_age: timedelta = MAX_EVENT_AGE) -> None:
        """`verifier`: a fixed set of keys, or a GatewayTrust that follows
        registrations and revocations in the database (center/registry.py)."""
        self._store = store
        self._verifier = verifier
        self._mqtt = mqtt
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
        if payload.get("schema") == RECONCILIATION_SCHEMA:
            _check_reconciliation(payload)
            self._check_time(payload["occurred_at"])
            return dict(payload)
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
            raise BadPayload(f"occurred_at is more than {_span(self.max_clock_skew)} in the "
                             "future (max_clock_skew_s)", QuarantineKind.FUTURE)
        if moment < now - self.max_event_age:
            raise BadPayload(f"occurred_at is older than {_span(self.max_event_age)} "
                             "(max_event_age_s)", QuarantineKind.STALE)

    async def _session(self) -> None:
        persistent = bool(self._mqtt.client_id)
        client = new_client(self._mqtt, persistent=persistent, manual_ack=True)
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await stack.enter_async_context(client)
            await client.subscribe(self._mqtt.tx_subscription, qos=QOS_AT_LEAST_ONCE)
            await client.subscribe(_reconciliation_subscription(self._mqtt),
                                   qos=QOS_AT_LEAST_ONCE)
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


def _reconciliation_subscription(mqtt: CenterMqtt) -> str:
    """The reconciliation reports, shared like the `tx` subscription."""
    topic = f"{mqtt.topic_prefix}/+/+/reconciliation"
    return f"$share/{mqtt.share_group}/{topic}" if mqtt.share_group else topic


def _check_reconciliation(payload: dict[str, Any]) -> None:
    """The fields the reconciliation table and its readers rely on."""
    missing = [name for name in (*RECONCILIATION_TEXT_FIELDS, *RECONCILIATION_OBJECT_FIELDS,
                                 "seq") if payload.get(name) is None]
    if missing:
        raise BadPayload(f"missing fields: {', '.join(missing)}")
    wrong = [name for name in RECONCILIATION_TEXT_FIELDS if not isinstance(payload[name], str)]
    wrong += [name for name in RECONCILIATION_OBJECT_FIELDS
              if not isinstance(payload[name], dict)]
    if isinstance(payload["seq"], bool) or not isinstance(payload["seq"], int):
        wrong.append("seq")
    if wrong:
        raise BadPayload(f"wrong type: {', '.join(wrong)}")
    if payload["outcome"] not in RECONCILIATION_OUTCOMES:
        raise BadPayload("outcome is not matched or mismatched")


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
