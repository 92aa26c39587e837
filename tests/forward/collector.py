"""A test subscriber that reconnects and keeps a persistent session."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

RETRY_S = 0.05
SESSION_EXPIRY_S = 3600


class Collector:
    def __init__(self, port: int, topic: str, client_id: str) -> None:
        self.port = port
        self.topic = topic
        self.client_id = client_id
        self.payloads: list[dict[str, Any]] = []
        self.subscribed = asyncio.Event()
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._session()
            self.subscribed.clear()
            await asyncio.sleep(RETRY_S)  # reconnect pacing, not synchronisation

    async def _session(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        async with aiomqtt.Client("127.0.0.1", self.port, identifier=self.client_id,
                                  protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                                  properties=properties) as client:
            await client.subscribe(self.topic, qos=1)
            self.subscribed.set()
            try:
                async for message in client.messages:
                    await self._keep(message)
            finally:
                # paho PUBACKs on receipt: what is still queued when the
                # connection drops would be lost if we did not take it now.
                queue = client._queue
                while not queue.empty():
                    await self._keep(queue.get_nowait())

    async def _keep(self, message: aiomqtt.Message) -> None:
        assert isinstance(message.payload, bytes)
        async with self._changed:
            self.payloads.append(json.loads(message.payload))
            self._changed.notify_all()

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.payloads) >= count)
        return self.payloads
