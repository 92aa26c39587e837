"""Property tests: round trips both ways, and garbage never escapes as anything but DecodeError."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from posgw.protocols.iso8583.errors import DecodeError
from posgw.protocols.iso8583.tlv import (
    MAX_LENGTH_OCTETS,
    TlvNode,
    build_tlv,
    flatten,
    parse_tlv,
    primitive_values,
)

_GENERATED_DEPTH = 3


@st.composite
def tags(draw: st.DrawFn, constructed: bool) -> str:
    """A well-formed BER tag of 1 to 4 bytes whose b6 says `constructed`."""
    first = draw(st.integers(1, 255).filter(lambda b: bool(b & 0x20) == constructed))
    if first & 0x1F != 0x1F:
        return bytes([first]).hex().upper()
    middle = draw(st.lists(st.integers(0x80, 0xFF), max_size=2))
    last = draw(st.integers(0x00, 0x7F))
    return bytes([first, *middle, last]).hex().upper()


@st.composite
def wider_length_forms(draw: st.DrawFn, length: int) -> int | None:
    """None (minimal form) or a long form wider than `length` needs."""
    minimal = 0 if length < 0x80 else (length.bit_length() + 7) // 8
    wider = st.integers(minimal + 1, MAX_LENGTH_OCTETS)
    return draw(st.none() | wider) if minimal < MAX_LENGTH_OCTETS else None


@st.composite
def sequences(draw: st.DrawFn, depth: int = 0) -> tuple[TlvNode, ...]:
    """Objects as `parse_tlv` would return them, '00' padding included."""
    size = draw(st.integers(0, 4 if depth < _GENERATED_DEPTH else 2))
    nodes = [draw(objects(depth)) for _ in range(size)]
    nodes = [replace(node, padding_before=draw(st.integers(0, 2))) for node in nodes]
    if nodes:
        nodes[-1] = replace(nodes[-1], padding_after=draw(st.integers(0, 2)))
    return tuple(nodes)


@st.composite
def objects(draw: st.DrawFn, depth: int) -> TlvNode:
    constructed = depth < _GENERATED_DEPTH and draw(st.booleans())
    tag = draw(tags(constructed))
    if constructed:
        children = draw(sequences(depth + 1))
        value = build_tlv(children)
    else:
        children = ()
        # Long values on purpose: hypothesis rarely sizes binaries past 0x7F.
        value = draw(st.binary(max_size=40) | st.binary(min_size=120, max_size=300))
    return TlvNode(tag, value, children, draw(wider_length_forms(len(value))))


@given(sequences())
def test_any_tree_survives_build_then_parse(nodes: tuple[TlvNode, ...]) -> None:
    assert parse_tlv(build_tlv(nodes)) == nodes


@given(sequences())
def test_bytes_of_any_tree_survive_parse_then_build(nodes: tuple[TlvNode, ...]) -> None:
    data = build_tlv(nodes)

    assert build_tlv(parse_tlv(data)) == data


def _assert_round_trips_or_raises_decode_error(data: bytes) -> None:
    try:
        nodes = parse_tlv(data)
    except DecodeError as error:
        assert 0 <= error.offset <= len(data)
        return
    assert build_tlv(nodes) == data


@given(st.binary(max_size=64))
def test_any_bytes_either_round_trip_exactly_or_raise_decode_error(data: bytes) -> None:
    _assert_round_trips_or_raises_decode_error(data)


@given(sequences(), st.data())
def test_damaged_tlv_either_round_trips_or_raises_decode_error(
    nodes: tuple[TlvNode, ...], data: st.DataObject
) -> None:
    encoded = bytearray(build_tlv(nodes))
    if encoded:
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
        del encoded[data.draw(st.integers(0, len(encoded))) :]
    _assert_round_trips_or_raises_decode_error(bytes(encoded))


def _outcome(parse: object) -> object:
    """A parse's result, or the DecodeError it raised as (field, offset, reason)."""
    try:
        return parse()  # type: ignore[operator]
    except DecodeError as error:
        return (error.field, error.offset, error.reason)


@given(sequences())
def test_primitive_values_equal_the_flattened_tree(nodes: tuple[TlvNode, ...]) -> None:
    data = build_tlv(nodes)
    assert primitive_values(data) == flatten(parse_tlv(data))


@given(st.one_of(st.binary(max_size=64), sequences().map(build_tlv).map(lambda b: b[:-1])))
def test_primitive_values_fail_exactly_where_the_parser_fails(data: bytes) -> None:
    assert _outcome(lambda: primitive_values(data)) == \
        _outcome(lambda: flatten(parse_tlv(data)))
