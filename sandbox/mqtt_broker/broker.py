"""The broker's state and rules: sessions, routing, retained messages, wills.

No sockets here: a connection (`connection.ClientConnection`) decodes packets, calls
these methods and sends the responses they return. Timers (session
expiry, Will Delay) go through the injected scheduler, an event loop.

QoS 2 is not offered. CONNACK advertises Maximum QoS 1 (MQTT 5
§3.2.2.3.4), so an MQTT 5 client must not publish at QoS 2 and one that
does is disconnected with 0x9B; SUBSCRIBE at QoS 2 is granted QoS 1
(§3.9.3). A 3.1.1 client, which cannot be told, gets the same grant and a
closed connection for a QoS 2 PUBLISH; its QoS 2 Will is kept at QoS 1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from posgw.sandbox.mqtt_broker.packets import (
    MQTT_5,
    ConnAck,
    Connect,
    Disconnect,
    Publish,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
)
from posgw.sandbox.mqtt_broker.routing import Subscription, SubscriptionIndex
from posgw.sandbox.mqtt_broker.session import (
    NEVER_EXPIRES,
    Cancellable,
    Delivery,
    Link,
    Message,
    Session,
)
from posgw.sandbox.mqtt_broker.topics import parse_filter, topic_matches, valid_topic_name
from posgw.sandbox.mqtt_broker.wire import (
    MAX_UINT16,
    Prop,
    Properties,
    Reason,
    int_prop,
    prop,
    string,
)

MAX_QOS = 1
# Per session, like `max_queued_messages` in the tests' private mosquitto.
DEFAULT_MAX_QUEUED = 100_000
CONNACK_311_IDENTIFIER_REJECTED = 0x02  # 3.1.1 §3.2.2.3
SUBACK_311_FAILURE = 0x80
TOPIC_CACHE_LIMIT = 50_000  # encoded topics remembered before starting afresh
# Properties that describe the message and travel with it (§3.3.2.3); Topic
# Alias and Subscription Identifier are per-hop and never forwarded.
_PER_HOP = frozenset({Prop.TOPIC_ALIAS, Prop.SUBSCRIPTION_ID, Prop.WILL_DELAY})


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    # 4 MiB: far above any posgw payload, and a bound on what one client can
    # make us buffer (mosquitto's default is the protocol maximum, 256 MiB).
    max_packet_size: int = 4 * 1024 * 1024
    max_queued: int = DEFAULT_MAX_QUEUED
    # QoS 1 messages in flight to one client, further capped by its Receive Maximum.
    max_inflight: int = 1024
    connect_timeout_s: float = 10.0


class ProtocolViolation(Exception):
    """The client broke a rule: its connection ends with this reason code."""

    def __init__(self, code: Reason, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class Scheduler(Protocol):
    def call_later(self, delay: float, callback: Callable[[], object]) -> Cancellable: ...


class BrokerCore:
    def __init__(self, scheduler: Scheduler, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig()
        self.sessions: dict[str, Session] = {}
        self.retained: dict[str, Message] = {}
        self.index = SubscriptionIndex()
        self._scheduler = scheduler
        self._pending_wills: dict[str, tuple[Cancellable, Will]] = {}
        self._topic_fields: dict[str, bytes] = {}

    def close(self) -> None:
        """Cancel every timer: the broker is stopping, and its memory goes with it."""
        for session in self.sessions.values():
            if session.expiry_timer is not None:
                session.expiry_timer.cancel()
        for timer, _will in self._pending_wills.values():
            timer.cancel()
        self._pending_wills.clear()

    # -- connection lifecycle ------------------------------------------------

    def connect(self, link: Link, packet: Connect) -> tuple[Session | None, ConnAck]:
        """Attach `link` to a new or resumed session; no session means refused."""
        five = packet.protocol_level == MQTT_5
        refusal = self._refusal(packet)
        if refusal is not None:
            return None, ConnAck(reason_code=refusal)
        client_id, assigned = packet.client_id, not packet.client_id
        if assigned:
            client_id = f"auto-{uuid.uuid4().hex}"
        self._take_over(client_id, packet.clean_start)
        session, present = self._session_for(client_id, packet.clean_start)
        if five:
            session.expiry_interval = int_prop(packet.properties, Prop.SESSION_EXPIRY, 0)
        else:  # 3.1.1: a persistent session lasts until the broker stops
            session.expiry_interval = 0 if packet.clean_start else NEVER_EXPIRES
        session.attach(link,
                       receive_maximum=int_prop(packet.properties, Prop.RECEIVE_MAXIMUM,
                                                MAX_UINT16),
                       max_packet_size=int_prop(packet.properties, Prop.MAXIMUM_PACKET_SIZE, 0))
        link.will = _capped_will(packet.will)
        return session, ConnAck(present, Reason.SUCCESS, self._connack_properties(
            client_id if assigned else None) if five else ())

    def _refusal(self, packet: Connect) -> int | None:
        if packet.protocol_level != MQTT_5:
            if not packet.client_id and not packet.clean_start:
                return CONNACK_311_IDENTIFIER_REJECTED  # 3.1.1 §3.1.3.1
            if packet.will is not None and not valid_topic_name(packet.will.topic):
                raise ProtocolViolation(Reason.TOPIC_NAME_INVALID, "invalid will topic")
            return None
        properties = packet.properties
        if prop(properties, Prop.AUTH_METHOD) is not None:
            return Reason.BAD_AUTHENTICATION_METHOD  # no enhanced authentication
        if prop(properties, Prop.RECEIVE_MAXIMUM) == 0:
            return Reason.PROTOCOL_ERROR  # §3.1.2.11.3
        if prop(properties, Prop.MAXIMUM_PACKET_SIZE) == 0:
            return Reason.PROTOCOL_ERROR  # §3.1.2.11.4
        will = packet.will
        if will is not None and not valid_topic_name(will.topic):
            return Reason.TOPIC_NAME_INVALID
        if will is not None and will.qos > MAX_QOS:
            return Reason.QOS_NOT_SUPPORTED  # §3.2.2.3.4
        return None

    def _connack_properties(self, assigned_id: str | None) -> Properties:
        properties: list[tuple[int, int | str]] = [
            (Prop.MAXIMUM_QOS, MAX_QOS),
            (Prop.MAXIMUM_PACKET_SIZE, self.config.max_packet_size),
            (Prop.SUB_ID_AVAILABLE, 0),
        ]
        if assigned_id is not None:
            properties.append((Prop.ASSIGNED_CLIENT_ID, assigned_id))
        return tuple(properties)

    def _take_over(self, client_id: str, clean_start: bool) -> None:
        """A second connection with the same client id ends the first (§3.1.4-3)."""
        existing = self.sessions.get(client_id)
        if existing is not None and existing.link is not None:
            old = existing.link
            old.kick(Reason.SESSION_TAKEN_OVER)
            self.connection_lost(existing, old)
        pending = self._pending_wills.pop(client_id, None)
        if pending is not None:
            timer, will = pending
            timer.cancel()
            if clean_start:  # the old session ends now, and with it the Will Delay
                self._publish_will(client_id, will)

    def _session_for(self, client_id: str, clean_start: bool) -> tuple[Session, bool]:
        existing = self.sessions.get(client_id)
        if existing is not None:
            if existing.expiry_timer is not None:
                existing.expiry_timer.cancel()
                existing.expiry_timer = None
            if not clean_start:
                return existing, True
            self._end_session(existing)
        session = Session(client_id, max_queued=self.config.max_queued,
                          max_inflight=min(self.config.max_inflight, MAX_UINT16))
        self.sessions[client_id] = session
        return session, False

    def disconnect(self, session: Session, link: Link, packet: Disconnect) -> None:
        """The client's DISCONNECT: a normal one (reason 0) discards the Will."""
        expiry = prop(packet.properties, Prop.SESSION_EXPIRY)
        if isinstance(expiry, int):
            if session.expiry_interval == 0 and expiry:
                raise ProtocolViolation(Reason.PROTOCOL_ERROR,
                                        "session expiry set on DISCONNECT after 0 on CONNECT")
            session.expiry_interval = expiry
        if packet.reason_code == Reason.SUCCESS:  # any other reason keeps it (§3.1.2.5)
            link.will = None

    def connection_lost(self, session: Session, link: Link) -> None:
        if session.link is not link:
            return  # already handled: taken over by a newer connection
        session.detach()
        will, link.will = link.will, None
        if will is not None:
            self._will_after_close(session, will)
        if session.expiry_interval == 0:
            self._end_session(session)
        elif session.expiry_interval != NEVER_EXPIRES:
            session.expiry_timer = self._scheduler.call_later(
                session.expiry_interval, lambda: self._end_session(session))

    def _will_after_close(self, session: Session, will: Will) -> None:
        delay = int_prop(will.properties, Prop.WILL_DELAY, 0)
        if delay == 0 or session.expiry_interval == 0:
            self._publish_will(session.client_id, will)
            return
        delay = min(delay, session.expiry_interval)  # the Will goes when the session ends

        def fire() -> None:
            self._pending_wills.pop(session.client_id, None)
            self._publish_will(session.client_id, will)

        self._pending_wills[session.client_id] = (self._scheduler.call_later(delay, fire), will)

    def _end_session(self, session: Session) -> None:
        for subscription in session.subscriptions.values():
            self.index.remove(subscription)
        session.subscriptions.clear()
        orphans = [d for d in session.undelivered() if d.share is not None]
        session.queue.clear()
        session.inflight.clear()
        for delivery in orphans:  # §4.8.2: another member SHOULD get them
            self._reroute(delivery)
        if session.expiry_timer is not None:
            session.expiry_timer.cancel()
            session.expiry_timer = None
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        pending = self._pending_wills.pop(session.client_id, None)
        if pending is not None:
            pending[0].cancel()
            self._publish_will(session.client_id, pending[1])

    def _publish_will(self, client_id: str, will: Will) -> None:
        properties = tuple(p for p in will.properties if p[0] not in _PER_HOP)
        message = Message(will.topic, will.payload, will.qos, will.retain, properties)
        if will.retain:
            self._retain(message)
        self.route(message, client_id)

    # -- application messages ----------------------------------------------------

    def publish(self, session: Session, packet: Publish) -> int:
        """Route a client's PUBLISH; returns how many subscribers it reached."""
        if packet.qos > MAX_QOS:
            raise ProtocolViolation(Reason.QOS_NOT_SUPPORTED, "QoS 2 is not supported")
        if not valid_topic_name(packet.topic):
            raise ProtocolViolation(Reason.TOPIC_NAME_INVALID, "invalid topic name")
        if packet.properties:
            _check_publish_properties(packet.properties)
        message = Message(packet.topic, packet.payload, packet.qos, packet.retain,
                          packet.properties, self._topic_field(packet.topic))
        if packet.retain:
            self._retain(message)
        return self.route(message, session.client_id)

    def _topic_field(self, topic: str) -> bytes:
        """The encoded topic, remembered: the same few hundred topics recur."""
        field = self._topic_fields.get(topic)
        if field is None:
            if len(self._topic_fields) >= TOPIC_CACHE_LIMIT:
                self._topic_fields.clear()
            field = self._topic_fields[topic] = string(topic)
        return field

    def _retain(self, message: Message) -> None:
        if message.payload:
            self.retained[message.topic] = message
        else:  # §3.3.1.3: an empty retained message clears the topic
            self.retained.pop(message.topic, None)

    def route(self, message: Message, sender: str) -> int:
        matches = self.index.match(message.topic)
        reached = 0
        if matches.plain:
            for subscription in self._plain_targets(matches.plain):
                if subscription.no_local and subscription.client_id == sender:
                    continue
                self._deliver(subscription, message)
                reached += 1
        for key in matches.shared:
            chosen = self.index.shared[key].pick(self._online)
            if chosen is not None:
                self._deliver(chosen, message, key)
                reached += 1
        return reached

    def _plain_targets(self, filters: list[str]) -> list[Subscription]:
        plain = self.index.plain
        if len(filters) == 1:  # the common case: no client can match twice
            return list(plain[filters[0]].values())
        # Overlapping filters: one copy per client, at the highest QoS (§3.3.4).
        chosen: dict[str, Subscription] = {}
        for topic_filter in filters:
            for client_id, subscription in plain[topic_filter].items():
                previous = chosen.get(client_id)
                if previous is None or subscription.qos > previous.qos:
                    chosen[client_id] = subscription
        return list(chosen.values())

    def _deliver(self, subscription: Subscription, message: Message,
                 share: tuple[str, str] | None = None) -> None:
        qos = message.qos if message.qos < subscription.qos else subscription.qos
        retain = message.retain and subscription.retain_as_published
        self.sessions[subscription.client_id].deliver(message, qos, retain, share)

    def _reroute(self, delivery: Delivery) -> None:
        """A shared-subscription message whose member's session ended unacknowledged."""
        assert delivery.share is not None
        group = self.index.shared.get(delivery.share)
        chosen = group.pick(self._online) if group is not None else None
        if chosen is not None:
            self._deliver(chosen, delivery.message, delivery.share)

    def _online(self, client_id: str) -> bool:
        return self.sessions[client_id].link is not None

    # -- subscriptions -----------------------------------------------------------

    def subscribe(self, session: Session, packet: Subscribe, version: int
                  ) -> tuple[SubAck, list[Delivery]]:
        """The SUBACK, and the retained messages to send after it (§3.3.1.3)."""
        if prop(packet.properties, Prop.SUBSCRIPTION_ID) is not None:
            raise ProtocolViolation(Reason.SUBSCRIPTION_IDS_NOT_SUPPORTED,
                                    "subscription identifiers are not supported")
        codes: list[int] = []
        retained: list[Delivery] = []
        for request in packet.requests:
            codes.append(self._subscribe_one(session, request, version, retained))
        return SubAck(packet.packet_id, tuple(codes)), retained

    def _subscribe_one(self, session: Session, request: SubscriptionRequest, version: int,
                       retained: list[Delivery]) -> int:
        spec = parse_filter(request.topic_filter)
        if spec is None:
            return Reason.TOPIC_FILTER_INVALID if version == MQTT_5 else SUBACK_311_FAILURE
        if spec.share_group is not None and request.no_local:
            raise ProtocolViolation(Reason.PROTOCOL_ERROR, "No Local on a shared subscription")
        granted = min(request.qos, MAX_QOS)
        subscription = Subscription(session.client_id, spec.topic_filter, granted,
                                    spec.share_group, request.no_local,
                                    request.retain_as_published)
        previous = session.subscriptions.get(request.topic_filter)
        if previous is not None:
            self.index.remove(previous)
        session.subscriptions[request.topic_filter] = subscription
        self.index.add(subscription)
        wants_retained = request.retain_handling == 0 or (
            request.retain_handling == 1 and previous is None)
        if spec.share_group is None and wants_retained:  # never to shared ones (§4.8.2)
            retained.extend(Delivery(m, min(m.qos, granted), True)
                            for topic, m in self.retained.items()
                            if topic_matches(spec.topic_filter, topic))
        return granted

    def unsubscribe(self, session: Session, packet: Unsubscribe) -> UnsubAck:
        codes = []
        for topic_filter in packet.topic_filters:
            subscription = session.subscriptions.pop(topic_filter, None)
            if subscription is None:
                codes.append(Reason.NO_SUBSCRIPTION_EXISTED)
            else:
                self.index.remove(subscription)
                codes.append(Reason.SUCCESS)
        return UnsubAck(packet.packet_id, tuple(codes))


def _check_publish_properties(properties: Properties) -> None:
    for ident, _value in properties:
        if ident == Prop.TOPIC_ALIAS:  # CONNACK advertised Topic Alias Maximum 0
            raise ProtocolViolation(Reason.TOPIC_ALIAS_INVALID, "topic aliases are not supported")
        if ident == Prop.SUBSCRIPTION_ID:
            raise ProtocolViolation(Reason.PROTOCOL_ERROR, "Subscription Identifier on PUBLISH")


def _capped_will(will: Will | None) -> Will | None:
    """A 3.1.1 client's QoS 2 Will is kept at QoS 1 (MQTT 5 clients are refused)."""
    if will is None or will.qos <= MAX_QOS:
        return will
    return Will(will.topic, will.payload, MAX_QOS, will.retain, will.properties)
