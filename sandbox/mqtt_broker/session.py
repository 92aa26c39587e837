"""One client's session: subscriptions, QoS 1 messages in flight, the offline queue.

The session outlives its network connection when the client asked for a
persistent session; then what arrives while it is away waits in `queue`,
and what was sent but not PUBACKed is sent again, with DUP, on resume
(MQTT 5 §4.4). Sans-IO: bytes go out through the attached `Link`.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import NamedTuple, Protocol

from posgw.sandbox.mqtt_broker.codec import publish_bytes
from posgw.sandbox.mqtt_broker.packets import MQTT_5, Will
from posgw.sandbox.mqtt_broker.routing import Subscription
from posgw.sandbox.mqtt_broker.wire import (
    MAX_UINT16,
    Properties,
    Reason,
    encode_properties,
    string,
)

log = logging.getLogger(__name__)

NEVER_EXPIRES = 0xFFFF_FFFF  # Session Expiry Interval meaning "never" (§3.1.2.11.2)
_NO_PROPS_FIELD = b"\x00"  # an empty property block: its length, zero


class Link(Protocol):
    """A client's network connection as the session and the broker core see it.

    The Will belongs to the connection, not the session (MQTT 5 §3.1.2.5).
    """

    version: int
    will: Will | None

    def send(self, data: bytes) -> None: ...

    def writable(self) -> bool:
        """False while the socket's write buffer is over its high-water mark."""
        ...

    def kick(self, code: Reason) -> None:
        """End the connection from the broker's side with this reason code."""
        ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Message:
    """An application message as the broker fans it out, encoded parts cached once."""

    __slots__ = ("payload", "properties", "properties_field", "qos", "retain", "topic",
                 "topic_field")

    def __init__(self, topic: str, payload: bytes, qos: int, retain: bool,
                 properties: Properties, topic_field: bytes | None = None) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.topic_field = string(topic) if topic_field is None else topic_field
        self.properties_field = encode_properties(properties) if properties else _NO_PROPS_FIELD


class Delivery(NamedTuple):
    message: Message
    qos: int
    retain: bool
    share: tuple[str, str] | None = None  # (group, filter) when sent to one member of many


class Session:
    def __init__(self, client_id: str, *, max_queued: int, max_inflight: int) -> None:
        self.client_id = client_id
        self.subscriptions: dict[str, Subscription] = {}  # by the filter as subscribed
        self.inflight: dict[int, Delivery] = {}  # insertion order = send order
        self.queue: deque[Delivery] = deque()
        self.link: Link | None = None
        self.expiry_interval = 0
        self.expiry_timer: Cancellable | None = None
        self.dropped = 0
        self._max_queued = max_queued
        self._max_inflight = max_inflight
        self._send_quota = max_inflight
        self._max_packet_size = 0
        self._next_id = 0
        self._overflowing = False

    def attach(self, link: Link, *, receive_maximum: int, max_packet_size: int) -> None:
        """`receive_maximum`, `max_packet_size`: the client's own limits (§3.1.2.11)."""
        self.link = link
        self._send_quota = min(receive_maximum, self._max_inflight)
        self._max_packet_size = max_packet_size

    def detach(self) -> None:
        self.link = None

    def deliver(self, message: Message, qos: int, retain: bool,
                share: tuple[str, str] | None = None) -> None:
        link = self.link
        if link is None:
            if qos:  # QoS 0 is not kept for an offline client (mosquitto's default too)
                self._enqueue(Delivery(message, qos, retain, share))
            return
        if self.queue or not link.writable() or (qos and len(self.inflight) >= self._send_quota):
            self._enqueue(Delivery(message, qos, retain, share))
            return
        self._send(link, Delivery(message, qos, retain, share))

    def undelivered(self) -> list[Delivery]:
        """What is in flight or queued, in order: the session is ending with it."""
        return [*self.inflight.values(), *self.queue]

    def acknowledge(self, packet_id: int) -> None:
        if self.inflight.pop(packet_id, None) is not None and self.queue:
            self.drain()

    def resume(self) -> None:
        """After a reconnect: in-flight messages again with DUP, then the queue."""
        link = self.link
        if link is None:
            return
        for packet_id, delivery in self.inflight.items():
            link.send(self._publish(link, delivery, packet_id, dup=True))
        self.drain()

    def drain(self) -> None:
        """Send queued messages while the link, the client's quota and the socket allow."""
        link, queue = self.link, self.queue
        while link is not None and queue and link.writable():
            if queue[0].qos and len(self.inflight) >= self._send_quota:
                break
            self._send(link, queue.popleft())
        if self._overflowing and len(queue) < self._max_queued // 2:
            self._overflowing = False

    def _send(self, link: Link, delivery: Delivery) -> None:
        packet_id = None
        if delivery.qos:
            packet_id = self._new_packet_id()
        data = self._publish(link, delivery, packet_id, dup=False)
        if self._max_packet_size and len(data) > self._max_packet_size:
            return  # §3.1.2.11.4: too large for this client, dropped for it alone
        if packet_id is not None:
            self.inflight[packet_id] = delivery
        link.send(data)

    def _publish(self, link: Link, delivery: Delivery, packet_id: int | None,
                 *, dup: bool) -> bytes:
        message = delivery.message
        return publish_bytes(
            message.topic_field, message.payload, qos=delivery.qos, retain=delivery.retain,
            dup=dup, packet_id=packet_id,
            properties_field=message.properties_field if link.version == MQTT_5 else b"")

    def _enqueue(self, delivery: Delivery) -> None:
        if len(self.queue) < self._max_queued:
            self.queue.append(delivery)
            return
        self.dropped += 1
        if not self._overflowing:  # one warning per overflow episode, not per message
            self._overflowing = True
            log.warning("session %r: queue full (%d messages), dropping new messages "
                        "(%d dropped so far)", self.client_id, self._max_queued, self.dropped)

    def _new_packet_id(self) -> int:
        packet_id = self._next_id
        while True:  # terminates: at most `_send_quota` <= 65535 ids are in flight
            packet_id = packet_id % MAX_UINT16 + 1
            if packet_id not in self.inflight:
                self._next_id = packet_id
                return packet_id
