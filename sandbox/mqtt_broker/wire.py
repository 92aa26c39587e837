"""MQTT wire primitives: integers, strings, the remaining-length varint, properties.

Sans-IO and pure: bytes in, values out. Decoders take the buffer and an
offset and return `(value, new_offset)`; every failure is a
`MalformedPacket` (the peer's fault) carrying an MQTT 5 reason code, and
every value we cannot put on the wire is an `EncodeError` (ours).
Section numbers refer to the MQTT 5.0 OASIS standard.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from enum import IntEnum

MAX_VARINT = 268_435_455  # four 7-bit groups (§1.5.5)
MAX_UINT16 = 0xFFFF
MAX_UINT32 = 0xFFFF_FFFF

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class Reason(IntEnum):
    """The MQTT 5 reason codes this broker sends (§2.4)."""

    SUCCESS = 0x00
    GRANTED_QOS_1 = 0x01
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    DISCONNECT_WITH_WILL = 0x04
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_ID_NOT_VALID = 0x85
    BAD_AUTHENTICATION_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    QUOTA_EXCEEDED = 0x97
    QOS_NOT_SUPPORTED = 0x9B
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    SUBSCRIPTION_IDS_NOT_SUPPORTED = 0xA1


class CodecError(Exception):
    """Base of the codec's own errors."""


class MalformedPacket(CodecError):
    """The peer sent bytes that are not a valid MQTT packet."""

    def __init__(self, reason: str, code: Reason = Reason.MALFORMED_PACKET) -> None:
        super().__init__(reason)
        self.code = code


class EncodeError(CodecError):
    """A packet we were asked to encode cannot be represented on the wire."""


# -- integers ---------------------------------------------------------------

def _need(buf: bytes, offset: int, count: int, what: str) -> None:
    if offset + count > len(buf):
        raise MalformedPacket(f"{what}: needs {count} bytes at offset {offset}, "
                              f"packet has {len(buf)}")


def read_u8(buf: bytes, offset: int) -> tuple[int, int]:
    _need(buf, offset, 1, "byte")
    return buf[offset], offset + 1


def read_u16(buf: bytes, offset: int) -> tuple[int, int]:
    _need(buf, offset, 2, "two-byte integer")
    return _U16.unpack_from(buf, offset)[0], offset + 2


def read_u32(buf: bytes, offset: int) -> tuple[int, int]:
    _need(buf, offset, 4, "four-byte integer")
    return _U32.unpack_from(buf, offset)[0], offset + 4


def u16(value: int) -> bytes:
    if not 0 <= value <= MAX_UINT16:
        raise EncodeError(f"{value} does not fit a two-byte integer")
    return _U16.pack(value)


def u32(value: int) -> bytes:
    if not 0 <= value <= MAX_UINT32:
        raise EncodeError(f"{value} does not fit a four-byte integer")
    return _U32.pack(value)


def encode_varint(value: int) -> bytes:
    """The variable byte integer of §1.5.5: 7 bits a byte, high bit = more."""
    if not 0 <= value <= MAX_VARINT:
        raise EncodeError(f"{value} does not fit a variable byte integer")
    if value < 0x80:  # the common cases first: packets under 128 bytes, then under 16 KiB
        return bytes((value,))
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while True:
        digit, value = value & 0x7F, value >> 7
        out.append(digit | 0x80 if value else digit)
        if not value:
            return bytes(out)


def decode_varint(buf: bytes, offset: int) -> tuple[int, int] | None:
    """`(value, new_offset)`, or None when the buffer ends inside the integer."""
    value = shift = 0
    for index in range(offset, min(offset + 4, len(buf))):
        byte = buf[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    if len(buf) - offset >= 4:
        raise MalformedPacket(f"variable byte integer at offset {offset} exceeds 4 bytes")
    return None


def read_varint(buf: bytes, offset: int) -> tuple[int, int]:
    decoded = decode_varint(buf, offset)
    if decoded is None:
        raise MalformedPacket(f"variable byte integer truncated at offset {offset}")
    return decoded


# -- strings and binary data ------------------------------------------------

def read_binary(buf: bytes, offset: int) -> tuple[bytes, int]:
    length, offset = read_u16(buf, offset)
    _need(buf, offset, length, "binary data")
    return bytes(buf[offset:offset + length]), offset + length


def read_str(buf: bytes, offset: int) -> tuple[str, int]:
    """A UTF-8 string (§1.5.4): well-formed, and never U+0000."""
    raw, end = read_binary(buf, offset)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise MalformedPacket(f"string at offset {offset} is not valid UTF-8") from None
    if "\x00" in text:
        raise MalformedPacket(f"string at offset {offset} contains U+0000")
    return text, end


def binary(data: bytes) -> bytes:
    return u16(len(data)) + data


def string(text: str) -> bytes:
    try:
        return binary(text.encode())
    except UnicodeEncodeError:
        raise EncodeError("string is not encodable as UTF-8") from None


# -- properties (§2.2.2) ----------------------------------------------------

PropertyValue = int | str | bytes | tuple[str, str]
Properties = tuple[tuple[int, PropertyValue], ...]
NO_PROPERTIES: Properties = ()


class Prop(IntEnum):
    PAYLOAD_FORMAT = 0x01
    MESSAGE_EXPIRY = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_ID = 0x0B
    SESSION_EXPIRY = 0x11
    ASSIGNED_CLIENT_ID = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTH_METHOD = 0x15
    AUTH_DATA = 0x16
    REQUEST_PROBLEM_INFO = 0x17
    WILL_DELAY = 0x18
    REQUEST_RESPONSE_INFO = 0x19
    RESPONSE_INFO = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUB_AVAILABLE = 0x28
    SUB_ID_AVAILABLE = 0x29
    SHARED_SUB_AVAILABLE = 0x2A


class Kind(IntEnum):
    BYTE = 1
    U16 = 2
    U32 = 3
    VARINT = 4
    STR = 5
    BINARY = 6
    PAIR = 7


PROPERTY_KINDS: dict[int, Kind] = {
    Prop.PAYLOAD_FORMAT: Kind.BYTE, Prop.MESSAGE_EXPIRY: Kind.U32,
    Prop.CONTENT_TYPE: Kind.STR, Prop.RESPONSE_TOPIC: Kind.STR,
    Prop.CORRELATION_DATA: Kind.BINARY, Prop.SUBSCRIPTION_ID: Kind.VARINT,
    Prop.SESSION_EXPIRY: Kind.U32, Prop.ASSIGNED_CLIENT_ID: Kind.STR,
    Prop.SERVER_KEEP_ALIVE: Kind.U16, Prop.AUTH_METHOD: Kind.STR,
    Prop.AUTH_DATA: Kind.BINARY, Prop.REQUEST_PROBLEM_INFO: Kind.BYTE,
    Prop.WILL_DELAY: Kind.U32, Prop.REQUEST_RESPONSE_INFO: Kind.BYTE,
    Prop.RESPONSE_INFO: Kind.STR, Prop.SERVER_REFERENCE: Kind.STR,
    Prop.REASON_STRING: Kind.STR, Prop.RECEIVE_MAXIMUM: Kind.U16,
    Prop.TOPIC_ALIAS_MAXIMUM: Kind.U16, Prop.TOPIC_ALIAS: Kind.U16,
    Prop.MAXIMUM_QOS: Kind.BYTE, Prop.RETAIN_AVAILABLE: Kind.BYTE,
    Prop.USER_PROPERTY: Kind.PAIR, Prop.MAXIMUM_PACKET_SIZE: Kind.U32,
    Prop.WILDCARD_SUB_AVAILABLE: Kind.BYTE, Prop.SUB_ID_AVAILABLE: Kind.BYTE,
    Prop.SHARED_SUB_AVAILABLE: Kind.BYTE,
}
# Only User Property and Subscription Identifier may repeat (§2.2.2.2, §3.3.2.3.8).
REPEATABLE = frozenset({Prop.USER_PROPERTY, Prop.SUBSCRIPTION_ID})


def prop(properties: Properties, ident: int) -> PropertyValue | None:
    """The first value of property `ident`, or None."""
    for key, value in properties:
        if key == ident:
            return value
    return None


def int_prop(properties: Properties, ident: int, default: int) -> int:
    value = prop(properties, ident)
    return value if isinstance(value, int) else default


def _read_value(kind: Kind, buf: bytes, offset: int) -> tuple[PropertyValue, int]:
    if kind is Kind.BYTE:
        return read_u8(buf, offset)
    if kind is Kind.U16:
        return read_u16(buf, offset)
    if kind is Kind.U32:
        return read_u32(buf, offset)
    if kind is Kind.VARINT:
        return read_varint(buf, offset)
    if kind is Kind.STR:
        return read_str(buf, offset)
    if kind is Kind.BINARY:
        return read_binary(buf, offset)
    key, offset = read_str(buf, offset)
    value, offset = read_str(buf, offset)
    return (key, value), offset


def read_properties(buf: bytes, offset: int) -> tuple[Properties, int]:
    length, offset = read_varint(buf, offset)
    if length == 0:
        return NO_PROPERTIES, offset
    end = offset + length
    _need(buf, offset, length, "properties")
    block = buf[:end]  # a property must not run past its block
    found: list[tuple[int, PropertyValue]] = []
    seen: set[int] = set()
    while offset < end:
        ident, offset = read_varint(block, offset)
        kind = PROPERTY_KINDS.get(ident)
        if kind is None:
            raise MalformedPacket(f"unknown property 0x{ident:02x} at offset {offset}")
        if ident in seen and ident not in REPEATABLE:
            raise MalformedPacket(f"property 0x{ident:02x} repeated", Reason.PROTOCOL_ERROR)
        seen.add(ident)
        value, offset = _read_value(kind, block, offset)
        found.append((ident, value))
    return tuple(found), end


def _value_bytes(kind: Kind, value: PropertyValue) -> bytes:
    if isinstance(value, tuple):
        if kind is Kind.PAIR:
            return string(value[0]) + string(value[1])
    elif isinstance(value, str):
        if kind is Kind.STR:
            return string(value)
    elif isinstance(value, bytes):
        if kind is Kind.BINARY:
            return binary(value)
    elif kind is Kind.BYTE and 0 <= value <= 0xFF:
        return bytes((value,))
    elif kind is Kind.U16:
        return u16(value)
    elif kind is Kind.U32:
        return u32(value)
    elif kind is Kind.VARINT:
        return encode_varint(value)
    raise EncodeError(f"{value!r} is not a valid {kind.name} property value")


def encode_properties(properties: Iterable[tuple[int, PropertyValue]]) -> bytes:
    body = bytearray()
    for ident, value in properties:
        kind = PROPERTY_KINDS.get(ident)
        if kind is None:
            raise EncodeError(f"unknown property 0x{ident:02x}")
        body += encode_varint(ident)
        body += _value_bytes(kind, value)
    return encode_varint(len(body)) + bytes(body)
