"""Sans-IO ISO 8583 codec: a spec as data, compiled once; bytes in, `Message` out.

Map of the parts:

============  ==============================================================
spec          `MessageSpec`, `FieldSpec`, `SubfieldLayout` (profile `[iso8583]`)
codec         `Codec`: `decode(bytes) -> Message`, `encode(Message) -> bytes`
message       `Message` (MTI + field number -> value), `FieldValue`
tlv           BER-TLV (field 55): `TlvNode`, `parse_tlv`, `build_tlv`, `flatten`
emv_tags      EMV tag names, `SENSITIVE_TAGS`, `describe_tlv` (masked dump)
errors        `DecodeError` (the peer's bytes), `EncodeError` (our values),
              `SpecError` (a bad profile), all `Iso8583Error`
============  ==============================================================

`bitmap`, `encodings`, `fields` and `subfields` are the codec's internals.
Messages and errors never quote field contents: a field may hold a PAN.
"""

from posgw.protocols.iso8583.codec import Codec, describe
from posgw.protocols.iso8583.emv_tags import (
    EMV_TAG_NAMES,
    SENSITIVE_TAGS,
    TlvDescription,
    TlvObject,
    describe_tlv,
    display_value,
    tag_name,
)
from posgw.protocols.iso8583.errors import DecodeError, EncodeError, Iso8583Error, SpecError
from posgw.protocols.iso8583.message import FieldValue, Message
from posgw.protocols.iso8583.spec import FieldSpec, MessageSpec, SubfieldLayout
from posgw.protocols.iso8583.tlv import (
    TlvNode,
    build_tlv,
    flatten,
    parse_tlv,
    primitive_values,
)

__all__ = [
    "EMV_TAG_NAMES",
    "SENSITIVE_TAGS",
    "Codec",
    "DecodeError",
    "EncodeError",
    "FieldSpec",
    "FieldValue",
    "Iso8583Error",
    "Message",
    "MessageSpec",
    "SpecError",
    "SubfieldLayout",
    "TlvDescription",
    "TlvNode",
    "TlvObject",
    "build_tlv",
    "describe",
    "describe_tlv",
    "display_value",
    "flatten",
    "parse_tlv",
    "primitive_values",
    "tag_name",
]
