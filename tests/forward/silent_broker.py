"""An MQTT 5 "broker" that acknowledges only the first `ack_first` publishes
of each connection.

Just enough of MQTT to prove the forwarder does not mark a row delivered
before the PUBACK: CONNECT gets CONNACK, PINGREQ gets PINGRESP, a QoS 1
PUBLISH is counted, and only the first ones (the gateway's birth) get a
PUBACK.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

CONNECT, PUBLISH, PINGREQ = 1, 3, 12
CONNACK_V5_ACCEPTED = bytes([0x20, 0x03, 0x00, 0x00, 0x00])  # flags 0, reason 0, no properties
PINGRESP = bytes([0xD0, 0x00])


class SilentBroker:
    def __init__(self, ack_first: int) -> None:
        self.ack_first = ack_first
        self.publishes = 0
        self.connections = 0
        self.received = asyncio.Condition()
        self.port = 0

    async def wait_for_publishes(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self.received:
            await self.received.wait_for(lambda: self.publishes >= count)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        publishes_here = 0
        try:
            while True:
                header = (await reader.readexactly(1))[0]
                body = await reader.readexactly(await _remaining_length(reader))
                packet_type = header >> 4
                if packet_type == CONNECT:
                    writer.write(CONNACK_V5_ACCEPTED)
                elif packet_type == PINGREQ:
                    writer.write(PINGRESP)
                elif packet_type == PUBLISH:
                    async with self.received:
                        self.publishes += 1
                        self.received.notify_all()
                    publishes_here += 1
                    if publishes_here <= self.ack_first:
                        writer.write(_puback(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _puback(publish_body: bytes) -> bytes:
    topic_length = int.from_bytes(publish_body[:2], "big")
    packet_id = publish_body[2 + topic_length:4 + topic_length]  # QoS 1: id follows topic
    return bytes([0x40, 0x02]) + packet_id  # v5 allows omitting reason code 0 (success)


async def _remaining_length(reader: asyncio.StreamReader) -> int:
    value, shift = 0, 0
    while True:  # MQTT variable byte integer: 7 bits per byte, high bit = more
        byte = (await reader.readexactly(1))[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7


@asynccontextmanager
async def silent_broker(ack_first: int = 1) -> AsyncIterator[SilentBroker]:
    broker = SilentBroker(ack_first)
    server = await asyncio.start_server(broker._serve, "127.0.0.1", 0)
    broker.port = server.sockets[0].getsockname()[1]
    async with server:
        yield broker
