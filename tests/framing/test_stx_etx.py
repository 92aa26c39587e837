"""STX ... ETX + LRC: seeds, coverage, garbage, ETB blocks, bounds."""

from __future__ import annotations

import pytest

from posgw.protocols.framing import (
    BlockAccepted,
    ControlReceived,
    CrcCheck,
    FrameReceived,
    FrameRejected,
    FramingError,
    GarbageSkipped,
    LengthHeader,
    LrcCheck,
    StxEtxFramer,
)


@pytest.mark.parametrize(
    ("framer", "lrc"),
    [
        (StxEtxFramer(), "43"),  # 41^42^43^03, seed 00, ETX covered
        (StxEtxFramer(check=LrcCheck(0x7F)), "3C"),  # 7F^41^42^43^03 (Nexi ECR17 base)
        (StxEtxFramer(covers_stx=True), "41"),  # 02^41^42^43^03
        (StxEtxFramer(covers_etx=False), "40"),  # 41^42^43 only
    ],
)
def test_lrc_seed_and_coverage(framer: StxEtxFramer, lrc: str) -> None:
    wire = bytes.fromhex("02 414243 03" + lrc)  # STX "ABC" ETX LRC
    assert framer.frame(b"ABC") == wire
    assert framer.feed(wire) == [FrameReceived(b"ABC")]


def test_bad_lrc_is_rejected_not_raised() -> None:
    framer = StxEtxFramer()
    assert framer.feed(bytes.fromhex("02 414243 03 44")) == [FrameRejected("check mismatch", 3)]
    assert not framer.in_frame


def test_garbage_before_stx_is_skipped_and_counted() -> None:
    framer = StxEtxFramer()
    events = framer.feed(bytes.fromhex("FF 00 31 02 414243 03 43"))
    assert events == [GarbageSkipped(3), FrameReceived(b"ABC")]


def test_control_bytes_between_frames_are_reported() -> None:
    framer = StxEtxFramer()
    # ACK, then a frame, then NAK
    events = framer.feed(bytes.fromhex("06 02 414243 03 43 15"))
    assert events == [ControlReceived(0x06), FrameReceived(b"ABC"), ControlReceived(0x15)]


def test_etb_blocks_are_accepted_one_by_one_and_joined() -> None:
    framer = StxEtxFramer()
    assert framer.feed(bytes.fromhex("02 48454C 17 56")) == [BlockAccepted(3)]  # "HEL" ETB
    assert framer.assembling
    # "LO!" ETX; the first 3 bytes came in the earlier block
    assert framer.feed(bytes.fromhex("02 4C4F21 03 21")) == [FrameReceived(b"HELLO!", 3)]
    assert not framer.assembling


def test_frame_blocks_cuts_a_message_into_etb_blocks() -> None:
    blocks = StxEtxFramer().frame_blocks(b"HELLO!", block_size=3)
    assert blocks == [bytes.fromhex("02 48454C 17 56"), bytes.fromhex("02 4C4F21 03 21")]


def test_bad_block_keeps_earlier_blocks_and_accepts_the_resend() -> None:
    framer = StxEtxFramer()
    framer.feed(bytes.fromhex("02 48454C 17 56"))
    assert framer.feed(bytes.fromhex("02 4C4F21 03 22")) == [FrameRejected("check mismatch", 3)]
    assert framer.feed(bytes.fromhex("02 4C4F21 03 21")) == [FrameReceived(b"HELLO!", 3)]


def test_stx_inside_text_restarts_the_frame() -> None:
    framer = StxEtxFramer()
    # STX "AB" (lost end) STX "ABC" ETX LRC: the 3 bytes of the first attempt are garbage
    events = framer.feed(bytes.fromhex("02 4142 02 414243 03 43"))
    assert events == [GarbageSkipped(3), FrameReceived(b"ABC")]


def test_over_long_text_is_rejected_without_buffering() -> None:
    framer = StxEtxFramer(max_frame=16)
    events = framer.feed(b"\x02" + b"A" * 1000)
    assert events == [FrameRejected("frame exceeds max_frame", 1000)]
    assert framer.buffered == 0
    # the rest of the over-long frame is garbage until the next STX
    assert framer.feed(b"A" * 10 + bytes.fromhex("03 00 02 414243 03 43")) == [
        GarbageSkipped(12),
        FrameReceived(b"ABC"),
    ]


def test_over_long_multi_block_message_is_rejected() -> None:
    framer = StxEtxFramer(max_frame=5)
    first, second = framer.frame_blocks(b"ABCD", 2)[0], StxEtxFramer().frame(b"EFGH")
    assert framer.feed(first) == [BlockAccepted(2)]
    assert framer.feed(second)[0] == FrameRejected("frame exceeds max_frame", 6)
    assert not framer.assembling


def test_inner_bcd_length_carries_binary_data() -> None:
    framer = StxEtxFramer(inner_length=LengthHeader.BCD2)
    # STX, length 0005 (BCD), data 01..05 (holds STX and ETX values), ETX, LRC over 00..03
    wire = bytes.fromhex("02 0005 0102030405 03 07")
    assert framer.frame(bytes.fromhex("0102030405")) == wire
    assert framer.feed(wire) == [FrameReceived(bytes.fromhex("0102030405"))]


def test_counted_data_without_etx_is_rejected() -> None:
    framer = StxEtxFramer(inner_length=LengthHeader.BCD2)
    # length says 2 bytes, but a third data byte comes where ETX belongs
    assert framer.feed(bytes.fromhex("02 0002 4142 43")) == [
        FrameRejected("counted data not followed by ETX or ETB", 2),
        GarbageSkipped(1),
    ]


def test_inner_length_over_max_frame_is_rejected() -> None:
    framer = StxEtxFramer(inner_length=LengthHeader.BCD2, max_frame=10)
    events = framer.feed(bytes.fromhex("02 9999"))
    assert events == [FrameRejected("declared length exceeds max_frame", 9999)]


def test_invalid_inner_length_is_rejected() -> None:
    framer = StxEtxFramer(inner_length=LengthHeader.ASCII4)
    assert framer.feed(b"\x02" + b"12x4") == [FrameRejected("invalid ascii4 length header", None)]


def test_crc_check_in_stx_etx_frames() -> None:
    framer = StxEtxFramer(check=CrcCheck())
    wire = framer.frame(b"123456788")
    assert wire[-2:] == CrcCheck().digest(b"123456788\x03")
    assert framer.feed(wire) == [FrameReceived(b"123456788")]


def test_frame_refuses_delimiters_in_payload_without_inner_length() -> None:
    with pytest.raises(FramingError):
        StxEtxFramer().frame(b"A\x03B")


def test_drop_partial_keeps_accepted_blocks_but_reset_does_not() -> None:
    framer = StxEtxFramer()
    framer.feed(bytes.fromhex("02 48454C 17 56 02 4C"))
    assert framer.drop_partial() == 1
    assert framer.assembling
    assert framer.reset() == 3
    assert framer.buffered == 0
