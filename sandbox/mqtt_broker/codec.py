"""Encode and decode MQTT 3.1.1 and 5.0 packets. Sans-IO, pure functions.

`encode(packet, version)` gives the bytes of one packet; `decode(data,
version)` takes the bytes of exactly one packet; `PacketReader.feed`
splits a byte stream into packets. `version` is the protocol level of the
connection (4 = 3.1.1, 5 = 5.0), which only CONNECT itself carries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from posgw.sandbox.mqtt_broker.packets import (
    MQTT_5,
    MQTT_311,
    PROTOCOL_NAME,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    PingReq,
    PingResp,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
)
from posgw.sandbox.mqtt_broker.wire import (
    NO_PROPERTIES,
    MalformedPacket,
    Properties,
    Reason,
    binary,
    decode_varint,
    encode_properties,
    encode_varint,
    read_binary,
    read_properties,
    read_str,
    read_u8,
    read_u16,
    string,
    u16,
)
from posgw.sandbox.mqtt_broker.wire import EncodeError as EncodeError  # re-exported

# Fixed-header flag nibbles that §2.1.3 requires for each packet type.
_REQUIRED_FLAGS = {PacketType.SUBSCRIBE: 0b0010, PacketType.UNSUBSCRIBE: 0b0010}
_FIRST_BYTES = [bytes((n,)) for n in range(256)]


def decode_fixed_header(buf: bytes | bytearray, offset: int = 0) -> tuple[int, int, int] | None:
    """`(first_byte, remaining_length, body_offset)`, or None if incomplete."""
    if offset + 1 >= len(buf):
        return None
    if buf[offset + 1] < 0x80:  # one length byte: every packet under 128 bytes
        return buf[offset], buf[offset + 1], offset + 2
    decoded = decode_varint(bytes(buf[offset + 1:offset + 5]), 0)
    if decoded is None:
        return None
    length, used = decoded
    return buf[offset], length, offset + 1 + used


def decode(data: bytes, version: int) -> Packet:
    """The one packet that `data` holds, all of it."""
    header = decode_fixed_header(data)
    if header is None:
        raise MalformedPacket(f"fixed header incomplete ({len(data)} bytes)")
    first, length, start = header
    if start + length != len(data):
        raise MalformedPacket(f"remaining length {length} but {len(data) - start} bytes follow")
    return decode_body(first, data, start, len(data), version)


def decode_body(first_byte: int, buf: bytes, start: int, end: int, version: int) -> Packet:
    """The packet whose fixed header was `first_byte` and whose body is `buf[start:end]`."""
    kind, flags = first_byte >> 4, first_byte & 0x0F
    if kind == PacketType.PUBLISH:  # first, and without copying the body: the hot path
        return _decode_publish(flags, buf, start, end, version)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise MalformedPacket(f"unsupported packet type {kind}", Reason.PROTOCOL_ERROR)
    if flags != _REQUIRED_FLAGS.get(PacketType(kind), 0):
        raise MalformedPacket(f"reserved flags 0x{flags:x} on packet type {kind}")
    return decoder(buf[start:end], version)


def _done(body: bytes, offset: int, what: str) -> None:
    if offset != len(body):
        raise MalformedPacket(f"{what}: {len(body) - offset} unexpected trailing bytes")


def _properties(body: bytes, offset: int, version: int) -> tuple[Properties, int]:
    if version != MQTT_5:
        return NO_PROPERTIES, offset
    return read_properties(body, offset)


# -- CONNECT ----------------------------------------------------------------

def _decode_connect(body: bytes, _version: int) -> Connect:
    name, offset = read_str(body, 0)
    level, offset = read_u8(body, offset)
    if name != PROTOCOL_NAME or level not in (MQTT_311, MQTT_5):
        raise MalformedPacket(f"protocol {name!r} level {level} not supported",
                              Reason.UNSUPPORTED_PROTOCOL_VERSION)
    flags, offset = read_u8(body, offset)
    _check_connect_flags(flags, level)
    keepalive, offset = read_u16(body, offset)
    properties, offset = _properties(body, offset, level)
    client_id, offset = read_str(body, offset)
    will = None
    if flags & 0x04:
        will, offset = _decode_will(body, offset, flags, level)
    username = password = None
    if flags & 0x80:
        username, offset = read_str(body, offset)
    if flags & 0x40:
        password, offset = read_binary(body, offset)
    _done(body, offset, "CONNECT")
    return Connect(client_id, level, bool(flags & 0x02), keepalive, will, username, password,
                   properties)


def _check_connect_flags(flags: int, level: int) -> None:
    will_qos = (flags >> 3) & 0x03
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag set")
    if will_qos == 3:
        raise MalformedPacket("CONNECT will QoS 3")
    if not flags & 0x04 and flags & 0x38:
        raise MalformedPacket("CONNECT will QoS or retain without a will")
    if level == MQTT_311 and flags & 0x40 and not flags & 0x80:
        raise MalformedPacket("CONNECT password without user name (3.1.1 §3.1.2.9)")


def _decode_will(body: bytes, offset: int, flags: int, level: int) -> tuple[Will, int]:
    properties, offset = _properties(body, offset, level)
    topic, offset = read_str(body, offset)
    payload, offset = read_binary(body, offset)
    return Will(topic, payload, (flags >> 3) & 0x03, bool(flags & 0x20), properties), offset


def _encode_connect(packet: Connect, _version: int) -> tuple[int, bytes]:
    will = packet.will
    five = packet.protocol_level == MQTT_5
    flags = (0x02 if packet.clean_start else 0) | (0x80 if packet.username is not None else 0)
    flags |= 0x40 if packet.password is not None else 0
    parts = [string(PROTOCOL_NAME), bytes((packet.protocol_level,))]
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    parts += [bytes((flags,)), u16(packet.keepalive)]
    if five:
        parts.append(encode_properties(packet.properties))
    parts.append(string(packet.client_id))
    if will is not None:
        if five:
            parts.append(encode_properties(will.properties))
        parts += [string(will.topic), binary(will.payload)]
    if packet.username is not None:
        parts.append(string(packet.username))
    if packet.password is not None:
        parts.append(binary(packet.password))
    return 0x10, b"".join(parts)


# -- CONNACK ----------------------------------------------------------------

def _decode_connack(body: bytes, version: int) -> ConnAck:
    flags, offset = read_u8(body, 0)
    if flags & 0xFE:
        raise MalformedPacket("CONNACK reserved flags set")
    code, offset = read_u8(body, offset)
    properties, offset = _properties(body, offset, version)
    _done(body, offset, "CONNACK")
    return ConnAck(bool(flags), code, properties)


def _encode_connack(packet: ConnAck, version: int) -> tuple[int, bytes]:
    body = bytes((1 if packet.session_present else 0, packet.reason_code))
    if version == MQTT_5:
        body += encode_properties(packet.properties)
    return 0x20, body


# -- PUBLISH and PUBACK -----------------------------------------------------

def _decode_publish(flags: int, buf: bytes, start: int, end: int, version: int) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH QoS 3")
    if qos == 0 and flags & 0x08:
        raise MalformedPacket("PUBLISH QoS 0 with DUP set")
    body = buf[start:end]
    topic, offset = read_str(body, 0)
    packet_id = None
    if qos:
        packet_id, offset = read_u16(body, offset)
        if packet_id == 0:
            raise MalformedPacket("PUBLISH packet identifier 0")
    properties = NO_PROPERTIES
    if version == MQTT_5:
        if offset < len(body) and body[offset] == 0:  # no properties: the usual case
            offset += 1
        else:
            properties, offset = read_properties(body, offset)
    return Publish(topic, body[offset:], qos, bool(flags & 0x01), bool(flags & 0x08),
                   packet_id, properties)


def publish_bytes(topic_field: bytes, payload: bytes, *, qos: int, retain: bool, dup: bool,
                  packet_id: int | None, properties_field: bytes) -> bytes:
    """A whole PUBLISH from pre-encoded parts: what fan-out uses per subscriber.

    `topic_field` is the length-prefixed topic; `properties_field` the
    encoded property block, or b"" on a 3.1.1 connection.
    """
    id_field = b"" if packet_id is None else u16(packet_id)
    length = len(topic_field) + len(id_field) + len(properties_field) + len(payload)
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    return b"".join((_FIRST_BYTES[first], encode_varint(length), topic_field, id_field,
                     properties_field, payload))


def _encode_publish(packet: Publish, version: int) -> bytes:
    if (packet.packet_id is None) != (packet.qos == 0) or not 0 <= packet.qos <= 2:
        raise EncodeError("PUBLISH needs a packet id exactly when QoS > 0")
    props = encode_properties(packet.properties) if version == MQTT_5 else b""
    return publish_bytes(string(packet.topic), packet.payload, qos=packet.qos,
                         retain=packet.retain, dup=packet.dup, packet_id=packet.packet_id,
                         properties_field=props)


def _decode_puback(body: bytes, version: int) -> PubAck:
    packet_id, offset = read_u16(body, 0)
    code, properties = 0, NO_PROPERTIES
    if version == MQTT_5 and offset < len(body):  # §3.4.2.1: both may be omitted
        code, offset = read_u8(body, offset)
        if offset < len(body):
            properties, offset = read_properties(body, offset)
    _done(body, offset, "PUBACK")
    return PubAck(packet_id, code, properties)


def _encode_puback(packet: PubAck, version: int) -> tuple[int, bytes]:
    body = u16(packet.packet_id)
    if version == MQTT_5 and (packet.reason_code or packet.properties):
        body += bytes((packet.reason_code,)) + encode_properties(packet.properties)
    return 0x40, body


# -- SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK -------------------------------

def _decode_subscribe(body: bytes, version: int) -> Subscribe:
    packet_id, offset = read_u16(body, 0)
    properties, offset = _properties(body, offset, version)
    requests = []
    while offset < len(body):
        topic_filter, offset = read_str(body, offset)
        options, offset = read_u8(body, offset)
        requests.append(_subscription_options(topic_filter, options, version))
    if not requests:
        raise MalformedPacket("SUBSCRIBE without a topic filter", Reason.PROTOCOL_ERROR)
    return Subscribe(packet_id, tuple(requests), properties)


def _subscription_options(topic_filter: str, options: int, version: int) -> SubscriptionRequest:
    reserved = 0xC0 if version == MQTT_5 else 0xFC
    if options & reserved or options & 0x03 == 3 or (options >> 4) & 0x03 == 3:
        raise MalformedPacket(f"invalid subscription options 0x{options:02x}")
    return SubscriptionRequest(topic_filter, options & 0x03, bool(options & 0x04),
                               bool(options & 0x08), (options >> 4) & 0x03)


def _encode_subscribe(packet: Subscribe, version: int) -> tuple[int, bytes]:
    parts = [u16(packet.packet_id)]
    if version == MQTT_5:
        parts.append(encode_properties(packet.properties))
    for request in packet.requests:
        options = (request.qos | (0x04 if request.no_local else 0)
                   | (0x08 if request.retain_as_published else 0)
                   | (request.retain_handling << 4))
        parts += [string(request.topic_filter), bytes((options,))]
    return 0x82, b"".join(parts)


def _decode_suback(body: bytes, version: int) -> SubAck:
    packet_id, offset = read_u16(body, 0)
    properties, offset = _properties(body, offset, version)
    return SubAck(packet_id, tuple(body[offset:]), properties)


def _encode_suback(packet: SubAck, version: int) -> tuple[int, bytes]:
    props = encode_properties(packet.properties) if version == MQTT_5 else b""
    return 0x90, u16(packet.packet_id) + props + bytes(packet.reason_codes)


def _decode_unsubscribe(body: bytes, version: int) -> Unsubscribe:
    packet_id, offset = read_u16(body, 0)
    properties, offset = _properties(body, offset, version)
    filters = []
    while offset < len(body):
        topic_filter, offset = read_str(body, offset)
        filters.append(topic_filter)
    if not filters:
        raise MalformedPacket("UNSUBSCRIBE without a topic filter", Reason.PROTOCOL_ERROR)
    return Unsubscribe(packet_id, tuple(filters), properties)


def _encode_unsubscribe(packet: Unsubscribe, version: int) -> tuple[int, bytes]:
    props = encode_properties(packet.properties) if version == MQTT_5 else b""
    return 0xA2, u16(packet.packet_id) + props + b"".join(map(string, packet.topic_filters))


def _decode_unsuback(body: bytes, version: int) -> UnsubAck:
    packet_id, offset = read_u16(body, 0)
    if version != MQTT_5:
        _done(body, offset, "UNSUBACK")
        return UnsubAck(packet_id)
    properties, offset = read_properties(body, offset)
    return UnsubAck(packet_id, tuple(body[offset:]), properties)


def _encode_unsuback(packet: UnsubAck, version: int) -> tuple[int, bytes]:
    if version != MQTT_5:
        return 0xB0, u16(packet.packet_id)
    return 0xB0, (u16(packet.packet_id) + encode_properties(packet.properties)
                  + bytes(packet.reason_codes))


# -- PINGREQ, PINGRESP, DISCONNECT ------------------------------------------

def _decode_pingreq(body: bytes, _version: int) -> PingReq:
    _done(body, 0, "PINGREQ")
    return PingReq()


def _decode_pingresp(body: bytes, _version: int) -> PingResp:
    _done(body, 0, "PINGRESP")
    return PingResp()


def _decode_disconnect(body: bytes, version: int) -> Disconnect:
    if version != MQTT_5 or not body:  # §3.14.2.1: reason 0 may be omitted
        _done(body, 0, "DISCONNECT")
        return Disconnect()
    code, offset = read_u8(body, 0)
    properties = NO_PROPERTIES
    if offset < len(body):
        properties, offset = read_properties(body, offset)
    _done(body, offset, "DISCONNECT")
    return Disconnect(code, properties)


def _encode_disconnect(packet: Disconnect, version: int) -> tuple[int, bytes]:
    if version != MQTT_5 or not (packet.reason_code or packet.properties):
        return 0xE0, b""
    return 0xE0, bytes((packet.reason_code,)) + encode_properties(packet.properties)


_DECODERS: dict[int, Callable[[bytes, int], Packet]] = {
    PacketType.CONNECT: _decode_connect, PacketType.CONNACK: _decode_connack,
    PacketType.PUBACK: _decode_puback, PacketType.SUBSCRIBE: _decode_subscribe,
    PacketType.SUBACK: _decode_suback, PacketType.UNSUBSCRIBE: _decode_unsubscribe,
    PacketType.UNSUBACK: _decode_unsuback, PacketType.PINGREQ: _decode_pingreq,
    PacketType.PINGRESP: _decode_pingresp, PacketType.DISCONNECT: _decode_disconnect,
}

PINGREQ_BYTES = b"\xc0\x00"
PINGRESP_BYTES = b"\xd0\x00"


def encode(packet: Packet, version: int) -> bytes:
    """The bytes of `packet` on a connection speaking protocol level `version`."""
    if isinstance(packet, Publish):
        return _encode_publish(packet, version)
    if isinstance(packet, PingReq):
        return PINGREQ_BYTES
    if isinstance(packet, PingResp):
        return PINGRESP_BYTES
    first, body = _encode_other(packet, version)
    return bytes((first,)) + encode_varint(len(body)) + body


def _encode_other(packet: Packet, version: int) -> tuple[int, bytes]:
    encoder = _ENCODERS.get(type(packet))
    if encoder is None:
        raise EncodeError(f"cannot encode {type(packet).__name__}")
    return encoder(packet, version)


_ENCODERS: dict[type, Callable[[Any, int], tuple[int, bytes]]] = {
    Connect: _encode_connect, ConnAck: _encode_connack, PubAck: _encode_puback,
    Subscribe: _encode_subscribe, SubAck: _encode_suback, Unsubscribe: _encode_unsubscribe,
    UnsubAck: _encode_unsuback, Disconnect: _encode_disconnect,
}
