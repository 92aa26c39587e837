"""Length-prefixed framing: every header kind, splits, rejects, bounds."""

from __future__ import annotations

import pytest

from posgw.protocols.framing import (
    FrameReceived,
    FrameRejected,
    FramingError,
    LengthHeader,
    LengthPrefixedFramer,
)
from posgw.protocols.iso8583.errors import SpecError

PAYLOAD_291 = bytes(range(256)) + bytes(35)


@pytest.mark.parametrize(
    ("header", "wire_header"),
    [
        (LengthHeader.BINARY2, "01 23"),  # 291 big-endian
        (LengthHeader.BCD2, "02 91"),  # 291 as packed BCD digits
        (LengthHeader.ASCII4, "30 32 39 31"),  # "0291"
        (LengthHeader.HEX4, "30 31 32 33"),  # "0123"
    ],
)
def test_header_declares_payload_length(header: LengthHeader, wire_header: str) -> None:
    framer = LengthPrefixedFramer(header)
    assert framer.frame(PAYLOAD_291) == bytes.fromhex(wire_header) + PAYLOAD_291
    assert framer.feed(bytes.fromhex(wire_header) + PAYLOAD_291) == [FrameReceived(PAYLOAD_291)]


@pytest.mark.parametrize("header", list(LengthHeader))
def test_frame_split_at_every_byte_boundary(header: LengthHeader) -> None:
    wire = LengthPrefixedFramer(header).frame(b"0800 message")
    for cut in range(len(wire) + 1):
        framer = LengthPrefixedFramer(header)
        events = framer.feed(wire[:cut]) + framer.feed(wire[cut:])
        assert events == [FrameReceived(b"0800 message")]


def test_several_frames_in_one_chunk() -> None:
    framer = LengthPrefixedFramer(LengthHeader.BINARY2)
    # 00 02 "ab" | 00 00 (empty frame) | 00 01 "c"
    events = framer.feed(bytes.fromhex("00 02 61 62 00 00 00 01 63"))
    assert events == [FrameReceived(b"ab"), FrameReceived(b""), FrameReceived(b"c")]


@pytest.mark.parametrize(
    ("header", "bad_header"),
    [
        (LengthHeader.ASCII4, "30 31 61 34"),  # "01a4": not a digit
        (LengthHeader.BCD2, "01 A0"),  # nibble A is not a BCD digit
        (LengthHeader.HEX4, "30 30 47 31"),  # "00G1": not a hex digit
        (LengthHeader.ASCII4, "20 20 31 32"),  # "  12": spaces are not digits
    ],
)
def test_invalid_header_characters_are_rejected_not_raised(
    header: LengthHeader, bad_header: str
) -> None:
    framer = LengthPrefixedFramer(header)
    events = framer.feed(bytes.fromhex(bad_header) + b"body")
    assert events == [FrameRejected(f"invalid {header.value} length header", None)]
    assert framer.buffered == 0


def test_hex_header_accepts_lowercase_digits() -> None:
    framer = LengthPrefixedFramer(LengthHeader.HEX4)
    assert framer.feed(b"000a" + b"0123456789") == [FrameReceived(b"0123456789")]


def test_over_long_declared_length_is_rejected_without_buffering() -> None:
    framer = LengthPrefixedFramer(LengthHeader.BINARY2, max_frame=100)
    # FF FF declares 65535 bytes; the 500 bytes after it are dropped, not stored
    events = framer.feed(bytes.fromhex("FF FF") + bytes(500))
    assert events == [FrameRejected("declared length exceeds max_frame", 0xFFFF)]
    assert framer.buffered == 0
    assert not framer.in_frame


def test_next_chunk_after_a_reject_starts_a_fresh_header() -> None:
    framer = LengthPrefixedFramer(LengthHeader.ASCII4, max_frame=100)
    framer.feed(b"9999" + b"x" * 10)
    assert framer.feed(b"0002ok") == [FrameReceived(b"ok")]


def test_drop_partial_forgets_a_half_frame() -> None:
    framer = LengthPrefixedFramer(LengthHeader.BINARY2)
    framer.feed(bytes.fromhex("00 05 61 62"))
    assert framer.in_frame
    assert framer.drop_partial() == 2
    assert framer.feed(bytes.fromhex("00 01 7A")) == [FrameReceived(b"z")]


def test_frame_refuses_payload_over_max_frame() -> None:
    with pytest.raises(FramingError):
        LengthPrefixedFramer(LengthHeader.BINARY2, max_frame=4).frame(b"12345")


def test_max_frame_beyond_what_the_header_declares_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as raised:
        LengthPrefixedFramer(LengthHeader.BCD2, max_frame=10_000)
    assert raised.value.key == "framing.max_frame"
