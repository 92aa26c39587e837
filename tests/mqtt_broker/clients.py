"""Test clients: aiomqtt (the real one) and a raw packet-level client.

The raw client exists for what paho will not do on purpose: withhold a
PUBACK, send a malformed packet, or vanish without a DISCONNECT.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from posgw.sandbox.mqtt_broker.codec import encode
from posgw.sandbox.mqtt_broker.packets import MQTT_5, ConnAck, Connect, Packet
from posgw.sandbox.mqtt_broker.stream import PacketReader

WAIT_S = 5.0


def client(port: int, identifier: str | None = None, *, session_expiry: int | None = None,
           will: aiomqtt.Will | None = None, keepalive: int = 60,
           protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5) -> aiomqtt.Client:
    """An aiomqtt client; with `session_expiry`, a persistent MQTT 5 session."""
    if session_expiry is None:
        return aiomqtt.Client("127.0.0.1", port, identifier=identifier, protocol=protocol,
                              will=will, keepalive=keepalive)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry
    return aiomqtt.Client("127.0.0.1", port, identifier=identifier, protocol=protocol,
                          clean_start=False, properties=properties, will=will,
                          keepalive=keepalive)


async def next_messages(mqtt: aiomqtt.Client, count: int,
                        timeout: float = WAIT_S) -> list[aiomqtt.Message]:
    received: list[aiomqtt.Message] = []
    if count == 0:
        return received
    async with asyncio.timeout(timeout):
        async for message in mqtt.messages:
            received.append(message)
            if len(received) == count:
                break
    return received


def payloads(messages: list[aiomqtt.Message]) -> list[bytes]:
    return [m.payload for m in messages if isinstance(m.payload, bytes)]


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 version: int) -> None:
        self._reader = reader
        self._writer = writer
        self._packets = PacketReader(1 << 24)
        self._packets.version = version
        self._pending: list[Packet] = []
        self.version = version
        self.connack: ConnAck | None = None  # set by `connected`

    @classmethod
    async def open(cls, port: int, version: int = MQTT_5) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, version)

    @classmethod
    async def connected(cls, port: int, connect: Connect) -> tuple[RawClient, ConnAck]:
        raw = await cls.open(port, connect.protocol_level)
        await raw.send(connect)
        connack = await raw.receive()
        assert isinstance(connack, ConnAck), connack
        raw.connack = connack
        return raw, connack

    async def send(self, packet: Packet) -> None:
        await self.send_bytes(encode(packet, self.version))

    async def send_bytes(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self, timeout: float = WAIT_S) -> Packet:
        """The next packet; EOFError when the broker closes the connection."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                data = await self._reader.read(65536)
                if not data:
                    raise EOFError("the broker closed the connection")
                self._pending += self._packets.feed(data)
        return self._pending.pop(0)

    async def closed_by_broker(self, timeout: float = WAIT_S) -> list[Packet]:
        """Every packet until the broker closes the connection."""
        seen: list[Packet] = []
        while True:
            try:
                seen.append(await self.receive(timeout))
            except (EOFError, ConnectionResetError):
                return seen

    def abort(self) -> None:
        """Vanish: a TCP reset, no DISCONNECT."""
        self._writer.transport.abort()

    async def close(self) -> None:
        self._writer.close()
        with suppress(ConnectionError):
            await self._writer.wait_closed()


@asynccontextmanager
async def raw_session(port: int, connect: Connect) -> AsyncIterator[RawClient]:
    raw, connack = await RawClient.connected(port, connect)
    assert connack.reason_code == 0, connack
    try:
        yield raw
    finally:
        await raw.close()
