"""Reading the center's confirmations as a gateway would: verified, schema-checked."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from posgw.center.validation import compiled_schemas
from posgw.drivers.mqtt import MqttConfig
from posgw.protocols.canonical_json import canonical_json, without_signature
from posgw.protocols.contract import CONFIRM_SCHEMA, confirm_topic
from tests.center.events import GATEWAY_ID


def verified(raw: bytes, public: Ed25519PublicKey) -> dict[str, Any]:
    """The confirmation, once its signature and its schema check out (raises otherwise)."""
    payload = json.loads(raw)
    public.verify(base64.b64decode(payload["signature"]),
                  canonical_json(without_signature(payload)))
    compiled_schemas()[CONFIRM_SCHEMA](payload)
    return dict(payload)


class Inbox:
    """Every confirmation published to the test gateway, verified."""

    def __init__(self, public: Ed25519PublicKey) -> None:
        self.public = public
        self.received: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def stored(self) -> list[str]:
        return [event_id for message in self.received for event_id in message["stored"]]

    def quarantined(self) -> dict[str, str]:
        return {item["event_id"]: item["reason"]
                for message in self.received for item in message["quarantined"]}

    async def until(self, predicate: Any, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def confirmations(mqtt: MqttConfig, public: Ed25519PublicKey,
                        branch: str = "B001") -> AsyncIterator[Inbox]:
    """Subscribed to the test gateway's confirm topic before it yields."""
    inbox = Inbox(public)
    async with aiomqtt.Client(mqtt.host, mqtt.port,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(confirm_topic(mqtt.topic_prefix, branch, GATEWAY_ID), qos=1)

        async def read() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                inbox.received.append(verified(message.payload, public))
                inbox.changed.set()

        async with asyncio.TaskGroup() as group:
            reader = group.create_task(read())
            try:
                yield inbox
            finally:
                reader.cancel()
