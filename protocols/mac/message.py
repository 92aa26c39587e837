"""MAC over a whole ISO 8583 message: one definition of what is covered,
for verifying a request and for signing a response.

The MAC input is the message as the codec encodes it, from the MTI to the
end of the last field before the MAC, with the bitmap already flagging the
MAC field (the MAC field is always the last field, so its 8 bytes are the
last 8 bytes of the message). Length header, TPDU, application header and
STX/ETX envelope are outside it: they belong to the link, not the message.
"""

from __future__ import annotations

from enum import StrEnum

from ..iso8583.codec import Codec
from ..iso8583.errors import EncodeError
from ..iso8583.message import Message
from .algorithms import MAC_LENGTH, MacError, MacKey, compute_mac, macs_equal
from .spec import MAC_FIELDS, MacSpec


class MacCheck(StrEnum):
    """What verifying a message's MAC found."""

    VALID = "valid"
    MISSING = "missing"  # the message has no MAC field
    NOT_LAST = "not last"  # fields follow the MAC field: it cannot cover them
    MISMATCH = "mismatch"


def mac_input(encoded: bytes, field: int) -> bytes:
    """The bytes the MAC in `field` covers: `encoded` without its last 8 bytes."""
    if field not in MAC_FIELDS:
        raise MacError(f"the MAC field is 64 or 128; got {field}")
    if len(encoded) <= MAC_LENGTH:
        raise MacError(f"a message carrying field {field} is longer than {MAC_LENGTH} bytes")
    return encoded[:-MAC_LENGTH]


def check_message(encoded: bytes, message: Message, spec: MacSpec, key: MacKey) -> MacCheck:
    """Verify the MAC of `message`, decoded from `encoded` with the profile's codec."""
    received = message.binary(spec.field)
    if received is None:
        return MacCheck.MISSING
    if max(message.fields) != spec.field or not encoded.endswith(received):
        return MacCheck.NOT_LAST
    expected = compute_mac(key, mac_input(encoded, spec.field), spec.padding)
    return MacCheck.VALID if macs_equal(expected, received) else MacCheck.MISMATCH


def sign_message(codec: Codec, message: Message, spec: MacSpec, key: MacKey) -> bytes:
    """`message` encoded with its MAC field computed (any MAC it held is replaced).

    Raises EncodeError like `Codec.encode`, also when a field above the MAC
    field is present (it would fall outside the MAC).
    """
    fields = {n: v for n, v in message.fields.items() if n != spec.field}
    if fields and max(fields) > spec.field:
        raise EncodeError(str(max(fields)), f"comes after the MAC field {spec.field}")
    placeholder = codec.encode(Message(message.mti, {**fields, spec.field: bytes(MAC_LENGTH)}))
    covered = mac_input(placeholder, spec.field)
    return covered + compute_mac(key, covered, spec.padding)


def without_mac(message: Message, spec: MacSpec) -> Message:
    """`message` minus its MAC field: the terminal's MAC protects the terminal's
    link only, and must not travel on (upstream, or into a stored response)."""
    if spec.field not in message.fields:
        return message
    return Message(message.mti, {n: v for n, v in message.fields.items() if n != spec.field})
