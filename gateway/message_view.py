"""What `posgw decode` shows of a message: JSON-ready and safe to print.

Every value passes through protocols.redact according to the field's
`sensitive` marking in the profile: the PAN masked 6+4, track data masked,
PIN blocks reduced to their length. Binary fields are upper-case hex.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from enum import Enum
from typing import Any

from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.emv_tags import SENSITIVE_TAGS, describe_tlv, display_value
from posgw.protocols.iso8583.errors import Iso8583Error
from posgw.protocols.iso8583.message import FieldValue, Message
from posgw.protocols.iso8583.spec import FieldSpec
from posgw.protocols.iso8583.subfields import SubfieldCodec
from posgw.protocols.iso8583.tlv import TlvNode, build_tlv, parse_tlv
from posgw.protocols.normalize import normalize
from posgw.protocols.redact import mask_pan, mask_secret, mask_track

MTI_CLASSES = {
    "1": "authorization", "2": "financial", "3": "file action", "4": "reversal",
    "5": "reconciliation", "6": "administrative", "7": "fee collection",
    "8": "network management",
}
MTI_FUNCTIONS = {
    "0": "request", "1": "response", "2": "advice", "3": "advice response",
    "4": "notification", "5": "notification ack", "6": "instruction", "7": "instruction ack",
}
ISO_VERSIONS = {"0": "ISO 8583:1987", "1": "ISO 8583:1993", "2": "ISO 8583:2003"}


def describe_mti(mti: str) -> str:
    """'ISO 8583:1987 financial request' for '0200'."""
    version = ISO_VERSIONS.get(mti[:1], "national/private")
    return f"{version} {MTI_CLASSES.get(mti[1:2], 'class ' + mti[1:2])} " \
           f"{MTI_FUNCTIONS.get(mti[2:3], 'function ' + mti[2:3])}"


def display_field(spec: FieldSpec | None, value: FieldValue) -> str:
    """A field value as text, masked as its profile marks it."""
    text = value.hex().upper() if isinstance(value, bytes) else value
    sensitivity = spec.sensitive if spec else ""
    if sensitivity == "pan":
        return mask_pan(text)
    if sensitivity == "track":
        return mask_track(text)
    if sensitivity in ("pin", "secret"):
        return mask_secret(value)
    return text


def masked_tlv_hex(nodes: tuple[TlvNode, ...]) -> str:
    """A TLV field as hex with card-data tag values (5A, 57, ...) starred in place."""
    parts: list[str] = []
    for node in nodes:
        encoded = build_tlv([node]).hex().upper()
        if not node.children and node.tag not in SENSITIVE_TAGS:
            parts.append(encoded)
            continue
        value_end = len(encoded) - 2 * node.padding_after
        value_start = value_end - 2 * len(node.value)
        inner = masked_tlv_hex(node.children) if node.children else "*" * (2 * len(node.value))
        parts.append(encoded[:value_start] + inner + encoded[value_end:])
    return "".join(parts)


def tlv_nodes(codec: Codec, message: Message) -> dict[int, tuple[TlvNode, ...]]:
    """Parsed BER-TLV of every field the profile marks `tlv`."""
    parsed: dict[int, tuple[TlvNode, ...]] = {}
    for number in sorted(codec.spec.tlv_fields & message.fields.keys()):
        value = message.fields[number]
        raw = value if isinstance(value, bytes) else value.encode("ascii")
        parsed[number] = parse_tlv(raw, str(number))
    return parsed


def subfield_values(codec: Codec, message: Message) -> dict[str, dict[str, str]]:
    """Sub-elements of fields whose profile declares a layout, masked for display."""
    out: dict[str, dict[str, str]] = {}
    for number, value in message.fields.items():
        spec = codec.field_spec(number)
        if spec is None or spec.subfields is None:
            continue
        parts = SubfieldCodec(spec).split(value)
        subs = spec.subfields.fields
        out[str(number)] = {
            key: display_field(subs.get(int(key)) if key.isdigit() else None, part)
            for key, part in parts.items()
        }
    return out


def message_json(codec: Codec, message: Message) -> dict[str, Any]:
    """The `decode --json` object: mti, fields, tlv, subfields, normalized."""
    parsed = tlv_nodes(codec, message)
    tlv: dict[str, str] = {}
    for nodes in parsed.values():
        _flatten_display(nodes, tlv)
    fields = {str(n): display_field(codec.field_spec(n), v) for n, v in message.fields.items()}
    for number, nodes in parsed.items():
        fields[str(number)] = masked_tlv_hex(nodes)
    view: dict[str, Any] = {
        "mti": message.mti,
        "fields": fields,
        "tlv": tlv,
        "normalized": normalized_json(codec, message),
    }
    subfields = subfield_values(codec, message)
    if subfields:
        view["subfields"] = subfields
    return view


def _flatten_display(nodes: tuple[TlvNode, ...], out: dict[str, str]) -> None:
    for node in nodes:
        if node.children:
            _flatten_display(node.children, out)
        elif node.tag not in out:
            out[node.tag] = display_value(node.tag, node.value)


def normalized_json(codec: Codec, message: Message) -> dict[str, Any]:
    """The normalized Transaction as JSON, or the reason it could not be made."""
    try:
        transaction = normalize(message, tlv_fields=codec.spec.tlv_fields)
    except Iso8583Error as exc:
        return {"error": str(exc)}
    out: dict[str, Any] = {}
    for f in dataclass_fields(transaction):
        value = getattr(transaction, f.name)
        if f.name == "card":
            continue  # carries the PAN for tokenizing; pan_masked is the display form
        out[f.name] = value.value if isinstance(value, Enum) else value
    return out


def tlv_rows(codec: Codec, message: Message) -> list[tuple[str, str, str]]:
    """(tag, name, value) rows for the human dump, children indented."""
    rows: list[tuple[str, str, str]] = []

    def walk(described: list[Any], depth: int) -> None:
        for item in described:
            rows.append(("  " * depth + item["tag"], item["name"], item["value"]))
            walk(item["children"], depth + 1)

    for nodes in tlv_nodes(codec, message).values():
        walk(list(describe_tlv(nodes)), 0)
    return rows
