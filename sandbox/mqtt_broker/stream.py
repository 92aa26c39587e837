"""Split a byte stream into MQTT packets, h11-style: `feed(data) -> packets`.

Sans-IO: the connection hands in whatever the socket produced; the reader
keeps the tail of an incomplete packet for the next call. Packets are
decoded straight from the bytes received; only a tail is ever copied.
"""

from __future__ import annotations

from posgw.sandbox.mqtt_broker.codec import decode_body, decode_fixed_header
from posgw.sandbox.mqtt_broker.packets import MQTT_5, Connect, Packet
from posgw.sandbox.mqtt_broker.wire import MalformedPacket, Reason


class PacketReader:
    """Stateful splitter; `error` is set once the stream stops making sense.

    `feed` returns the packets decoded *before* a malformed one, so the
    caller can act on them and then close; nothing is decoded after an error.
    """

    def __init__(self, max_packet_size: int) -> None:
        self.max_packet_size = max_packet_size
        # Every packet before CONNECT is a protocol error anyway; CONNECT
        # itself carries the level that decodes the rest of the stream.
        self.version = MQTT_5
        self.error: MalformedPacket | None = None
        self._tail = bytearray()
        self._needed = 0  # bytes the tail must reach before a packet can complete

    def feed(self, data: bytes) -> list[Packet]:
        if self.error is not None:
            return []
        if self._tail:
            self._tail += data
            if len(self._tail) < self._needed:
                return []  # a large packet still arriving: do not copy it again
            data = bytes(self._tail)
            self._tail.clear()
        packets: list[Packet] = []
        try:
            offset = self._split(data, packets)
        except MalformedPacket as exc:
            self.error = exc
            self._tail.clear()
            return packets
        if offset < len(data):
            self._tail += data[offset:]
        return packets

    def _split(self, data: bytes, packets: list[Packet]) -> int:
        """Decode the complete packets of `data` into `packets`; returns where they end."""
        offset, size = 0, len(data)
        while (header := decode_fixed_header(data, offset)) is not None:
            first, length, start = header
            end = start + length
            if end - offset > self.max_packet_size:
                raise MalformedPacket(f"packet of {end - offset} bytes exceeds "
                                      f"{self.max_packet_size}", Reason.PACKET_TOO_LARGE)
            if end > size:
                self._needed = end - offset
                return offset
            packet = decode_body(first, data, start, end, self.version)
            if isinstance(packet, Connect):
                self.version = packet.protocol_level
            packets.append(packet)
            offset = end
        self._needed = 0
        return offset
