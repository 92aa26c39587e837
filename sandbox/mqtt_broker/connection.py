"""One client's TCP connection: bytes to packets, packets to the broker core.

An `asyncio.Protocol` rather than streams: packets are handled inside
`data_received`, with no task per connection or per message. Outgoing
packets produced in one pass of the event loop are written together by a
single `writelines`, so a burst of PUBLISH/PUBACK costs one send.
A bad packet, a broken rule or a bug while handling one client ends that
client's connection (and publishes its Will), never the broker.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import cast

from posgw.sandbox.mqtt_broker.broker import BrokerCore, ProtocolViolation
from posgw.sandbox.mqtt_broker.codec import PINGRESP_BYTES, encode
from posgw.sandbox.mqtt_broker.packets import (
    MQTT_5,
    MQTT_311,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PubAck,
    Publish,
    Subscribe,
    Unsubscribe,
    Will,
)
from posgw.sandbox.mqtt_broker.session import Session
from posgw.sandbox.mqtt_broker.stream import PacketReader
from posgw.sandbox.mqtt_broker.wire import Reason

log = logging.getLogger(__name__)

KEEPALIVE_GRACE = 1.5  # §3.1.2.10: silence for 1.5 x Keep Alive ends the connection
_PUBACK = struct.Struct("!BBH")  # PUBACK short form: type, length 2, packet id
_PUBACK_NO_MATCH = struct.Struct("!BBHB")  # MQTT 5 form with reason 0x10
_UNSUPPORTED_VERSION_311 = encode(ConnAck(reason_code=0x01), MQTT_311)  # 3.1.1 §3.2.2.3


class ClientConnection(asyncio.Protocol):
    def __init__(self, core: BrokerCore, loop: asyncio.AbstractEventLoop,
                 on_closed: Callable[[ClientConnection], None]) -> None:
        self.version = MQTT_5
        self.will: Will | None = None
        self.client_id = "?"
        self._core = core
        self._loop = loop
        self._on_closed = on_closed
        self._reader = PacketReader(core.config.max_packet_size)
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._out: list[bytes] = []
        self._paused = False
        self._closing = False
        self._receiving = False
        self._last_seen = loop.time()
        self._keepalive_limit = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._timer = self._loop.call_later(self._core.config.connect_timeout_s,
                                            self._connect_timeout)

    def data_received(self, data: bytes) -> None:
        self._last_seen = self._loop.time()
        self._receiving = True  # our own replies go out in one write at the end
        try:
            self._handle_all(self._reader.feed(data))
        finally:
            self._receiving = False
            self._flush()

    def _handle_all(self, packets: list[Packet]) -> None:
        try:
            for packet in packets:
                if self._closing:
                    return
                self._handle(packet)
        except ProtocolViolation as exc:
            log.info("client %r: %s; disconnecting (0x%02x)", self.client_id, exc, exc.code)
            self.kick(exc.code)
            return
        except Exception:  # a bug here must cost one connection, not the broker
            log.exception("client %r: internal error; disconnecting", self.client_id)
            self.kick(Reason.IMPLEMENTATION_SPECIFIC)
            return
        error = self._reader.error
        if error is not None and not self._closing:
            log.info("client %r: malformed packet: %s; disconnecting", self.client_id, error)
            self.kick(error.code)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        session, self._session = self._session, None
        if session is not None:
            self._core.connection_lost(session, self)
        self._on_closed(self)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._session is not None:
            self._session.drain()

    # -- Link (what the session and the core call) --------------------------------

    def send(self, data: bytes) -> None:
        if not self._out and not self._receiving:
            self._loop.call_soon(self._flush)
        self._out.append(data)

    def writable(self) -> bool:
        return not self._paused and not self._closing

    def kick(self, code: Reason) -> None:
        if self._closing:
            return
        if self._session is not None and self.version == MQTT_5:
            self.send(encode(Disconnect(code), MQTT_5))
        elif self._session is None and code == Reason.UNSUPPORTED_PROTOCOL_VERSION:
            self.send(_UNSUPPORTED_VERSION_311)
        self.close()

    def close(self) -> None:
        """Write what is pending, then close; `connection_lost` follows."""
        self._closing = True
        self._flush()
        if self._transport is not None:
            self._transport.close()

    # -- packets -------------------------------------------------------------------

    def _handle(self, packet: Packet) -> None:
        session = self._session
        if session is None:
            if not isinstance(packet, Connect):
                raise ProtocolViolation(Reason.PROTOCOL_ERROR,
                                        f"{type(packet).__name__} before CONNECT")
            self._on_connect(packet)
        elif isinstance(packet, Publish):  # the hot path first
            reached = self._core.publish(session, packet)
            if packet.packet_id is not None:
                self.send(self._puback(packet.packet_id, reached))
        elif isinstance(packet, PubAck):
            session.acknowledge(packet.packet_id)
        elif isinstance(packet, PingReq):
            self.send(PINGRESP_BYTES)
        elif isinstance(packet, Subscribe):
            suback, retained = self._core.subscribe(session, packet, self.version)
            self.send(encode(suback, self.version))
            for delivery in retained:
                session.deliver(*delivery)
        elif isinstance(packet, Unsubscribe):
            self.send(encode(self._core.unsubscribe(session, packet), self.version))
        elif isinstance(packet, Disconnect):
            self._core.disconnect(session, self, packet)
            self.close()
        else:
            raise ProtocolViolation(Reason.PROTOCOL_ERROR,
                                    f"unexpected {type(packet).__name__} from a client")

    def _puback(self, packet_id: int, reached: int) -> bytes:
        if reached or self.version != MQTT_5:
            return _PUBACK.pack(0x40, 2, packet_id)
        return _PUBACK_NO_MATCH.pack(0x40, 3, packet_id, Reason.NO_MATCHING_SUBSCRIBERS)

    def _on_connect(self, packet: Connect) -> None:
        self.version = packet.protocol_level
        self.client_id = packet.client_id
        session, connack = self._core.connect(self, packet)
        self.send(encode(connack, self.version))
        if session is None:
            log.info("client %r refused (0x%02x)", self.client_id, connack.reason_code)
            self.close()
            return
        self._session = session
        self.client_id = session.client_id
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if packet.keepalive:
            self._keepalive_limit = packet.keepalive * KEEPALIVE_GRACE
            self._timer = self._loop.call_later(self._keepalive_limit, self._check_keepalive)
        session.resume()

    # -- timers and output ------------------------------------------------------

    def _connect_timeout(self) -> None:
        log.info("connection without CONNECT for %.0f s; closing",
                 self._core.config.connect_timeout_s)
        self.close()

    def _check_keepalive(self) -> None:
        idle = self._loop.time() - self._last_seen
        if idle >= self._keepalive_limit:
            log.info("client %r: silent for %.1f s; disconnecting", self.client_id, idle)
            self.kick(Reason.KEEP_ALIVE_TIMEOUT)
            return
        self._timer = self._loop.call_later(self._keepalive_limit - idle, self._check_keepalive)

    def _flush(self) -> None:
        if not self._out:
            return
        out, self._out = self._out, []
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.writelines(out)
