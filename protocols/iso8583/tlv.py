"""BER-TLV as EMV uses it in ISO 8583 field 55 (EMV Book 3, Annex B).

Tags are one or more bytes (b5..b1 = 11111 in the first byte means more
follow; each further byte has b8 set while yet another follows). Lengths
are short form (< 0x80) or long form 0x81..0x84 followed by 1..4 bytes.
b6 of the first tag byte marks a constructed object (a template), whose
value is itself a sequence of objects. EMV allows '00' padding bytes
before, between and after objects (EMV Specification Update 69).

`parse_tlv` keeps what a byte-exact rebuild needs: the tag bytes, a long
length form wider than necessary, and padding runs. `build_tlv` reproduces
any parsed input byte for byte and writes minimal lengths for nodes made
by hand. Parsing raises only `DecodeError`, building only `EncodeError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from string import hexdigits

from posgw.protocols.iso8583.emv_tags import SENSITIVE_TAGS
from posgw.protocols.iso8583.errors import DecodeError, EncodeError

#: Templates nested deeper than this are refused: EMV itself nests at most
#: two or three levels, and the bound keeps hostile input from recursing.
MAX_DEPTH = 8
#: EMV tags are 1..3 bytes; one more leaves room for proprietary tags.
MAX_TAG_BYTES = 4
#: 0x84 plus four bytes: lengths up to 2**32 - 1 (EMV needs at most 0x82).
MAX_LENGTH_OCTETS = 4

_PADDING = 0x00
_CONSTRUCTED_BIT = 0x20
_TAG_NUMBER_MASK = 0x1F
_MORE_TAG_BYTES = 0x80
_LONG_LENGTH = 0x80


@dataclass(frozen=True, slots=True, repr=False)
class TlvNode:
    """One BER-TLV data object.

    `tag` is the upper-case hex of the whole tag ("9F02"). `value` holds the
    raw value bytes; for a constructed tag these are the encoded children
    (padding included). The last three fields exist for byte-exact rebuilds:
    `length_octets` is the number of bytes after a 0x8N long-form prefix
    when the sender used a wider form than needed (None: minimal form);
    `padding_before` / `padding_after` count '00' bytes around the object.
    """

    tag: str
    value: bytes
    children: tuple[TlvNode, ...] = ()
    length_octets: int | None = None
    padding_before: int = 0
    padding_after: int = 0

    @classmethod
    def primitive(cls, tag: str, value: bytes) -> TlvNode:
        """A primitive object with minimal length encoding."""
        tag = tag.upper()
        if _tag_bytes(tag, "55")[0] & _CONSTRUCTED_BIT:
            raise EncodeError("55", f"tag {tag} is constructed; use TlvNode.constructed")
        return cls(tag, bytes(value))

    @classmethod
    def constructed(cls, tag: str, children: Iterable[TlvNode]) -> TlvNode:
        """A template holding `children`, its value encoded from them."""
        tag = tag.upper()
        if not _tag_bytes(tag, "55")[0] & _CONSTRUCTED_BIT:
            raise EncodeError("55", f"tag {tag} is primitive; use TlvNode.primitive")
        kids = tuple(children)
        return cls(tag, build_tlv(kids), kids)

    @property
    def is_constructed(self) -> bool:
        """b6 of the first tag byte; False for a tag that is not hex at all."""
        head = self.tag[:2] if isinstance(self.tag, str) else ""
        return (
            len(head) == 2
            and all(c in hexdigits for c in head)
            and bool(int(head, 16) & _CONSTRUCTED_BIT)
        )

    def __repr__(self) -> str:
        # Values of card-data tags never appear, and a template's raw value
        # is left out because it may hold such a tag: its children show it.
        if self.children or self.is_constructed:
            return f"TlvNode({self.tag!r}, children={self.children!r})"
        if str(self.tag).upper() in SENSITIVE_TAGS:
            return f"TlvNode({self.tag!r}, <{len(self.value)} bytes masked>)"
        return f"TlvNode({self.tag!r}, {self.value.hex().upper()!r})"


def parse_tlv(data: bytes, field: str = "55") -> tuple[TlvNode, ...]:
    """Parse a sequence of BER-TLV objects; offsets in errors are absolute."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(field, 0, "TLV data must be bytes")
    raw = bytes(data)
    return _parse_sequence(raw, 0, len(raw), 0, field)


def build_tlv(nodes: Iterable[TlvNode], field: str = "55") -> bytes:
    """Encode `nodes`; the exact inverse of `parse_tlv` for parsed nodes."""
    out = bytearray()
    for node in nodes:
        _encode_node(node, out, 0, field)
    return bytes(out)


def flatten(nodes: Iterable[TlvNode]) -> dict[str, bytes]:
    """Primitive objects by tag, depth first; the first occurrence wins."""
    found: dict[str, bytes] = {}
    _collect_primitives(nodes, found)
    return found


def primitive_values(data: bytes, field: str = "55") -> dict[str, bytes]:
    """`flatten(parse_tlv(data))` without building the tree (the hot path of
    normalizing every chip request); the same errors for the same input."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(field, 0, "TLV data must be bytes")
    raw = bytes(data)
    found: dict[str, bytes] = {}
    _walk_primitives(raw, 0, len(raw), 0, field, found)
    return found


def _walk_primitives(data: bytes, start: int, end: int, depth: int, field: str,
                     found: dict[str, bytes]) -> None:
    pos, seen_object = start, False
    while pos < end:
        padding_start = pos
        while pos < end and data[pos] == _PADDING:
            pos += 1
        if pos == end:
            if not seen_object:
                raise DecodeError(field, padding_start, "padding without any data object")
            return
        tag_end, _octets, value_start, value_end = _read_header(data, pos, end, field)
        if data[pos] & _CONSTRUCTED_BIT:
            if depth >= MAX_DEPTH:
                raise DecodeError(field, pos, f"templates nested deeper than {MAX_DEPTH}")
            _walk_primitives(data, value_start, value_end, depth + 1, field, found)
        else:
            found.setdefault(data[pos:tag_end].hex().upper(), data[value_start:value_end])
        pos, seen_object = value_end, True


def _collect_primitives(nodes: Iterable[TlvNode], found: dict[str, bytes]) -> None:
    for node in nodes:
        if node.children or node.is_constructed:
            _collect_primitives(node.children, found)
        elif node.tag not in found:
            found[node.tag] = node.value


# -- parsing ---------------------------------------------------------------


def _parse_sequence(
    data: bytes, start: int, end: int, depth: int, field: str
) -> tuple[TlvNode, ...]:
    nodes: list[TlvNode] = []
    pos = start
    while pos < end:
        padding_start = pos
        while pos < end and data[pos] == _PADDING:
            pos += 1
        padding = pos - padding_start
        if pos == end:
            if not nodes:
                raise DecodeError(field, padding_start, "padding without any data object")
            nodes[-1] = replace(nodes[-1], padding_after=padding)
            break
        node, pos = _parse_object(data, pos, end, depth, field)
        nodes.append(replace(node, padding_before=padding) if padding else node)
    return tuple(nodes)


def _parse_object(data: bytes, start: int, end: int, depth: int, field: str) -> tuple[TlvNode, int]:
    tag_end, length_octets, value_start, value_end = _read_header(data, start, end, field)
    tag = data[start:tag_end].hex().upper()
    value = data[value_start:value_end]
    children: tuple[TlvNode, ...] = ()
    if data[start] & _CONSTRUCTED_BIT:
        if depth >= MAX_DEPTH:
            raise DecodeError(field, start, f"templates nested deeper than {MAX_DEPTH}")
        children = _parse_sequence(data, value_start, value_end, depth + 1, field)
    return TlvNode(tag, value, children, length_octets), value_end


def _read_header(data: bytes, start: int, end: int,
                 field: str) -> tuple[int, int | None, int, int]:
    """(tag end, length octets when wider than minimal, value start, value end)."""
    tag_end = _read_tag_end(data, start, end, field)
    length, length_octets, value_start = _read_length(data, tag_end, end, field)
    value_end = value_start + length
    if value_end > end:
        reason = f"length {length} runs past the end ({end - value_start} bytes left)"
        raise DecodeError(field, tag_end, reason)
    return tag_end, length_octets, value_start, value_end


def _read_tag_end(data: bytes, start: int, end: int, field: str) -> int:
    """Offset just past the tag that begins at `start`."""
    if data[start] & _TAG_NUMBER_MASK != _TAG_NUMBER_MASK:
        return start + 1
    pos = start + 1
    while True:
        if pos >= end:
            raise DecodeError(field, start, "tag truncated")
        if pos - start + 1 > MAX_TAG_BYTES:
            raise DecodeError(field, start, f"tag longer than {MAX_TAG_BYTES} bytes")
        more = data[pos] & _MORE_TAG_BYTES
        pos += 1
        if not more:
            return pos


def _read_length(data: bytes, start: int, end: int, field: str) -> tuple[int, int | None, int]:
    """(length, length_octets when wider than minimal, offset of the value)."""
    if start >= end:
        raise DecodeError(field, start, "length missing")
    first = data[start]
    if first < _LONG_LENGTH:
        return first, None, start + 1
    octets = first & 0x7F
    if octets == 0:
        raise DecodeError(field, start, "indefinite length (0x80) is not allowed")
    if octets > MAX_LENGTH_OCTETS:
        raise DecodeError(field, start, f"length of {octets} octets is not supported")
    if start + 1 + octets > end:
        raise DecodeError(field, start, "length truncated")
    length = int.from_bytes(data[start + 1 : start + 1 + octets], "big")
    wider = None if octets == _minimal_long_octets(length) else octets
    return length, wider, start + 1 + octets


def _minimal_long_octets(length: int) -> int:
    """Bytes after the 0x8N prefix in the minimal form; 0 means short form."""
    return 0 if length < _LONG_LENGTH else (length.bit_length() + 7) // 8


# -- building --------------------------------------------------------------


def _encode_node(node: TlvNode, out: bytearray, depth: int, field: str) -> None:
    if not isinstance(node, TlvNode):
        raise EncodeError(field, "TLV items must be TlvNode")
    if not isinstance(node.value, bytes):
        raise EncodeError(field, f"tag {node.tag}: value must be bytes")
    tag = _tag_bytes(node.tag, field)
    _check_padding(node, field)
    out += bytes(node.padding_before)
    out += tag
    out += _length_bytes(node, field)
    if tag[0] & _CONSTRUCTED_BIT:
        if depth >= MAX_DEPTH:
            raise EncodeError(field, f"templates nested deeper than {MAX_DEPTH}")
        body = bytearray()
        for child in node.children:
            _encode_node(child, body, depth + 1, field)
        if body != node.value:
            raise EncodeError(field, f"tag {node.tag}: value does not match its children")
    elif node.children:
        raise EncodeError(field, f"tag {node.tag} is primitive but has children")
    out += node.value
    out += bytes(node.padding_after)


def _check_padding(node: TlvNode, field: str) -> None:
    for count in (node.padding_before, node.padding_after):
        if not isinstance(count, int) or count < 0:
            raise EncodeError(field, f"tag {node.tag}: padding must be a count >= 0")


def _tag_bytes(tag: str, field: str) -> bytes:
    """The tag's bytes, checked to be one well-formed BER tag."""
    if (
        not isinstance(tag, str)
        or not tag
        or len(tag) % 2
        or len(tag) > 2 * MAX_TAG_BYTES
        or any(c not in hexdigits for c in tag)
    ):
        raise EncodeError(field, f"tag {tag!r} is not 1..{MAX_TAG_BYTES} bytes of hex")
    raw = bytes.fromhex(tag)
    if raw[0] == _PADDING:
        raise EncodeError(field, f"tag {tag} would read back as padding")
    multi_byte = raw[0] & _TAG_NUMBER_MASK == _TAG_NUMBER_MASK
    subsequent = raw[1:]
    well_formed = (
        bool(subsequent)
        and all(b & _MORE_TAG_BYTES for b in subsequent[:-1])
        and not subsequent[-1] & _MORE_TAG_BYTES
        if multi_byte
        else not subsequent
    )
    if not well_formed:
        raise EncodeError(field, f"tag {tag} is not a well-formed BER tag")
    return raw


def _length_bytes(node: TlvNode, field: str) -> bytes:
    length = len(node.value)
    octets = _minimal_long_octets(length)
    if octets > MAX_LENGTH_OCTETS:
        raise EncodeError(field, f"tag {node.tag}: length {length} is too large")
    wider = node.length_octets
    if wider is not None:
        if not isinstance(wider, int) or not max(octets, 1) <= wider <= MAX_LENGTH_OCTETS:
            raise EncodeError(field, f"tag {node.tag}: length_octets cannot hold {length}")
        octets = wider
    if octets == 0:
        return bytes([length])
    return bytes([_LONG_LENGTH | octets]) + length.to_bytes(octets, "big")
