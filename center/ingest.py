"""The center's subscriber: verify, then insert once per event_id.

Subscribes with an MQTT 5 shared subscription (`$share/<group>/...`), so
several center processes split the stream; the unique event_id makes the
result the same whichever of them gets a redelivery. A payload that fails
verification goes to the quarantine table with the reason, never into the
events table.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiomqtt

from center.db import CenterStore
from center.verify import BadPayload, SignatureVerifier

log = logging.getLogger(__name__)

TX_SCHEMA = "tx-event.v1"
REQUIRED_FIELDS = ("event_id", "branch_id", "gateway_id", "seq", "status", "kind",
                   "terminal_id", "stan", "amount_minor", "currency", "occurred_at")
RETRY_DELAY_S = 0.5  # the center's own reconnect pause (it may not import drivers/)
RETRY_DELAY_CAP_S = 30.0


@dataclass(frozen=True, slots=True)
class CenterMqtt:
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "pos/v1"
    share_group: str | None = "center"  # None: a plain (non-shared) subscription
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None

    @property
    def tx_subscription(self) -> str:
        topic = f"{self.topic_prefix}/+/+/tx"
        return f"$share/{self.share_group}/{topic}" if self.share_group else topic


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

    async def run(self) -> None:
        delay = RETRY_DELAY_S
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                log.warning("center MQTT: %s; reconnecting in %.1f s", exc, delay)
            self.subscribed.clear()
            await asyncio.sleep(delay)
            delay = min(RETRY_DELAY_CAP_S, delay * 2)

    async def handle(self, topic: str, raw: bytes) -> str:
        """Ingest one message; returns "ingested", "duplicate" or "quarantined"."""
        try:
            payload = self._checked(raw)
        except BadPayload as exc:
            await asyncio.to_thread(self._store.quarantine, topic, str(exc), raw)
            self.quarantined += 1
            log.warning("quarantined a payload on %s: %s", topic, exc)
            return "quarantined"
        if await asyncio.to_thread(self._store.insert_event, topic, payload):
            self.ingested += 1
            return "ingested"
        self.duplicates += 1
        return "duplicate"

    def _checked(self, raw: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadPayload("not JSON") from None
        self._verifier.verify(payload)
        if payload.get("schema") != TX_SCHEMA:
            raise BadPayload(f"schema is not {TX_SCHEMA}")
        missing = [name for name in REQUIRED_FIELDS if payload.get(name) is None]
        if missing:
            raise BadPayload(f"missing fields: {', '.join(missing)}")
        return dict(payload)

    async def _session(self) -> None:
        tls = aiomqtt.TLSParameters(ca_certs=self._mqtt.tls_ca) if self._mqtt.tls_ca else None
        async with aiomqtt.Client(self._mqtt.host, self._mqtt.port,
                                  identifier=self._mqtt.client_id,
                                  username=self._mqtt.username, password=self._mqtt.password,
                                  protocol=aiomqtt.ProtocolVersion.V5,
                                  tls_params=tls) as client:
            await client.subscribe(self._mqtt.tx_subscription, qos=1)
            self.subscribed.set()
            try:
                async for message in client.messages:
                    await self._handle_message(message)
            finally:
                # paho PUBACKs on receipt; messages still queued when the link
                # drops must be handled now or they are gone.
                queue = client._queue
                while not queue.empty():
                    await self._handle_message(queue.get_nowait())

    async def _handle_message(self, message: aiomqtt.Message) -> None:
        raw = message.payload if isinstance(message.payload, bytes) else b""
        await self.handle(str(message.topic), raw)
