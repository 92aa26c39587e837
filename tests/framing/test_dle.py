"""DLE STX ... DLE ETX + CRC-16 (ZVT serial): doubling, check, bounds."""

from __future__ import annotations

from posgw.protocols.framing import (
    ControlReceived,
    DleFramer,
    FrameReceived,
    FrameRejected,
    GarbageSkipped,
    LrcCheck,
)

# DLE STX | 06 00 10 (one data DLE, doubled on the wire) | DLE ETX | CRC of 06 00 10 03, low first
ZVT_WIRE = bytes.fromhex("10 02  06 00 10 10  10 03  90 EC")


def test_frame_doubles_dle_and_appends_crc_low_byte_first() -> None:
    assert DleFramer().frame(bytes.fromhex("06 00 10")) == ZVT_WIRE


def test_receives_frame_and_undoubles_dle() -> None:
    assert DleFramer().feed(ZVT_WIRE) == [FrameReceived(bytes.fromhex("06 00 10"))]


def test_frame_split_at_every_byte_boundary() -> None:
    for cut in range(len(ZVT_WIRE) + 1):
        framer = DleFramer()
        events = framer.feed(ZVT_WIRE[:cut]) + framer.feed(ZVT_WIRE[cut:])
        assert events == [FrameReceived(bytes.fromhex("06 00 10"))]


def test_bad_crc_is_rejected_not_raised() -> None:
    wire = ZVT_WIRE[:-1] + b"\x00"
    assert DleFramer().feed(wire) == [FrameRejected("check mismatch", 3)]


def test_invalid_dle_sequence_is_rejected() -> None:
    # DLE followed by 41 inside the data is neither doubling nor ETX
    events = DleFramer().feed(bytes.fromhex("10 02 06 10 41"))
    assert events == [FrameRejected("invalid DLE sequence 10 41", 1)]


def test_garbage_and_lone_dle_before_the_start_are_skipped() -> None:
    events = DleFramer().feed(bytes.fromhex("33 10 44") + ZVT_WIRE)
    assert events == [GarbageSkipped(3), FrameReceived(bytes.fromhex("06 00 10"))]


def test_dle_stx_inside_a_frame_restarts_it() -> None:
    events = DleFramer().feed(bytes.fromhex("10 02 06 00") + ZVT_WIRE)
    assert events == [GarbageSkipped(4), FrameReceived(bytes.fromhex("06 00 10"))]


def test_ack_between_frames_is_reported() -> None:
    events = DleFramer().feed(bytes.fromhex("06") + ZVT_WIRE + bytes.fromhex("15"))
    assert events == [
        ControlReceived(0x06),
        FrameReceived(bytes.fromhex("06 00 10")),
        ControlReceived(0x15),
    ]


def test_over_long_frame_is_rejected_without_buffering() -> None:
    framer = DleFramer(max_frame=8)
    events = framer.feed(bytes.fromhex("10 02") + b"A" * 100)
    assert events == [FrameRejected("frame exceeds max_frame", 100)]
    assert framer.buffered == 0


def test_doubled_dle_counts_once_against_max_frame() -> None:
    framer = DleFramer(max_frame=4)
    payload = bytes.fromhex("10 10 10 10")  # 8 bytes on the wire, 4 of data
    assert framer.feed(framer.frame(payload)) == [FrameReceived(payload)]


def test_lrc_check_variant() -> None:
    framer = DleFramer(check=LrcCheck())
    wire = framer.frame(b"ABC")
    assert wire == bytes.fromhex("10 02 414243 10 03 43")  # LRC 41^42^43^03
    assert framer.feed(wire) == [FrameReceived(b"ABC")]
