"""Sub-fields of private fields (48, 60-63, 127...), split on demand.

The message codec keeps each field's value whole, so a round trip is byte
exact and the hot path never pays for sub-fields nobody reads. A
`SubfieldCodec` splits a value into its sub-elements and joins them back,
using the same compiled field codecs as the message itself:

- positional: sub-fields in number order, trailing ones optional;
- bitmap: the value carries its own 8-byte bitmap, then the sub-fields it
  flags (Visa field 62, Postilion field 127); bit 1 is sub-field 1;
- tlv: a tag of `tag_chars` characters and a length of `len_chars` digits
  before each value (Mastercard DE 48 style sub-elements);
- ber-tlv: EMV BER-TLV, tags in upper-case hex.
"""

from __future__ import annotations

from collections.abc import Mapping

from .bitmap import build_bitmaps, fields_in
from .codec import describe
from .encodings import FieldValue
from .errors import DecodeError, EncodeError
from .fields import FieldCodec, compile_field
from .spec import FieldSpec, SubfieldLayout
from .tlv import TlvNode, build_tlv, parse_tlv

Subfields = dict[str, FieldValue]


class SubfieldCodec:
    """Split and join the value of one field that declares a sub-field layout."""

    def __init__(self, parent: FieldSpec) -> None:
        if parent.subfields is None:
            raise ValueError(f"field {parent.number} declares no sub-fields")
        self.parent = parent
        self.layout: SubfieldLayout = parent.subfields
        self.codecs = {n: compile_field(f) for n, f in self.layout.fields.items()}
        self._charset = "ascii" if parent.enc != "ebcdic" else parent.codepage

    def split(self, value: FieldValue) -> Subfields:
        """Sub-elements by number (or tag); raises DecodeError naming e.g. field 62.3."""
        try:
            raw = value if isinstance(value, bytes) else value.encode(self._charset)
        except UnicodeError:
            raise DecodeError(self.parent.label, 0, "value is not valid text") from None
        layout = self.layout.layout
        if layout == "ber-tlv":
            nodes = parse_tlv(raw, self.parent.label)
            return {node.tag: node.value for node in nodes}
        if layout == "tlv":
            return self._split_char_tlv(raw)
        numbers: tuple[int, ...] = tuple(self.codecs)
        pos = 0
        if layout == "bitmap":
            numbers, pos = self._read_bitmap(raw)
        return self._split_fields(raw, numbers, pos, stop_at_end=layout == "positional")

    def join(self, parts: Mapping[str, FieldValue]) -> FieldValue:
        """The field value for the given sub-elements; raises EncodeError."""
        layout = self.layout.layout
        if layout == "ber-tlv":
            nodes = [TlvNode.primitive(tag, _as_bytes(v)) for tag, v in parts.items()]
            return self._as_parent(build_tlv(nodes))
        chunks: list[bytes] = []
        if layout == "tlv":
            chunks = [self._char_tlv_item(tag, v) for tag, v in parts.items()]
        else:
            numbers = sorted(int(k) for k in parts)
            if layout == "bitmap":
                chunks.append(self._bitmap_bytes(numbers))
            chunks += [self._encode_one(n, parts[str(n)]) for n in numbers]
        return self._as_parent(b"".join(chunks))

    def _split_fields(
        self, raw: bytes, numbers: tuple[int, ...], pos: int, stop_at_end: bool
    ) -> Subfields:
        out: Subfields = {}
        for n in numbers:
            if stop_at_end and pos == len(raw):
                break
            codec = self._codec(n, pos)
            try:
                out[str(n)], pos = codec.decode(raw, pos)
            except (ValueError, TypeError, LookupError) as exc:
                raise DecodeError(f"{self.parent.number}.{n}", pos, describe(exc)) from None
        if pos != len(raw):
            raise DecodeError(self.parent.label, pos, "bytes left after the last sub-field")
        return out

    def _codec(self, n: int, pos: int) -> FieldCodec:
        codec = self.codecs.get(n)
        if codec is None:
            raise DecodeError(f"{self.parent.number}.{n}", pos, "sub-field not in profile")
        return codec

    def _read_bitmap(self, raw: bytes) -> tuple[tuple[int, ...], int]:
        """One 8-byte sub-field bitmap; its bit 1 is sub-field 1 (Visa 62.1), not a flag."""
        try:
            if self.parent.type != "b":
                bitmap, pos = bytes.fromhex(raw[:16].decode("ascii")), 16
            else:
                bitmap, pos = raw[:8], 8
        except (ValueError, UnicodeError) as exc:
            raise DecodeError(self.parent.label, 0, describe(exc)) from None
        if len(bitmap) != 8:
            raise DecodeError(self.parent.label, 0, "sub-field bitmap truncated")
        return fields_in(bitmap, 0), pos

    def _bitmap_bytes(self, numbers: list[int]) -> bytes:
        bitmap = build_bitmaps(numbers)
        if self.parent.type != "b":
            return bitmap.hex().upper().encode("ascii")
        return bitmap

    def _split_char_tlv(self, raw: bytes) -> Subfields:
        tag_chars, len_chars = self.layout.tag_chars, self.layout.len_chars
        out: Subfields = {}
        pos = 0
        while pos < len(raw):
            head = raw[pos : pos + tag_chars + len_chars]
            size_text = head[tag_chars:]
            if len(head) != tag_chars + len_chars or not size_text.isdigit():
                raise DecodeError(self.parent.label, pos, "sub-element header truncated or bad")
            end = pos + len(head) + int(size_text)
            if end > len(raw):
                raise DecodeError(self.parent.label, pos, "sub-element longer than the field")
            tag = head[:tag_chars].decode("ascii", "replace")
            out[tag] = raw[pos + len(head) : end].decode(self._charset, "replace")
            pos = end
        return out

    def _char_tlv_item(self, tag: str, value: FieldValue) -> bytes:
        data = value if isinstance(value, bytes) else value.encode(self._charset)
        tag_chars, len_chars = self.layout.tag_chars, self.layout.len_chars
        if len(tag) != tag_chars or len(data) >= 10**len_chars:
            raise EncodeError(f"{self.parent.number}.{tag}", "tag or length does not fit")
        return tag.encode("ascii") + f"{len(data):0{len_chars}d}".encode("ascii") + data

    def _encode_one(self, n: int, value: FieldValue) -> bytes:
        codec = self.codecs.get(n)
        if codec is None:
            raise EncodeError(f"{self.parent.number}.{n}", "sub-field not in profile")
        try:
            return codec.encode(value)
        except (ValueError, TypeError, LookupError) as exc:
            raise EncodeError(f"{self.parent.number}.{n}", describe(exc)) from None

    def _as_parent(self, raw: bytes) -> FieldValue:
        if self.parent.type == "b":
            return raw
        try:
            return raw.decode(self._charset)
        except UnicodeError:
            raise EncodeError(self.parent.label, "sub-fields are not valid text") from None


def _as_bytes(value: FieldValue) -> bytes:
    return value if isinstance(value, bytes) else bytes.fromhex(value)
