"""TPDU and fixed header: split, join, reply."""

from __future__ import annotations

import pytest

from posgw.protocols.framing import (
    Envelope,
    FrameRejected,
    FramingError,
    Tpdu,
    join_envelope,
    split_envelope,
)

# UnionPay-style frame payload (after the 2-byte length):
UNIONPAY = bytes.fromhex(
    "60 0003 0000"  # TPDU: id 60, destination NII 003, source NII 000
    "60 31 00 31 10 01"  # POS header: app type 60, version 31, status 0, request 0, sw 311001
    "08 00"  # ISO 8583 MTI and what follows
)


def test_split_reads_tpdu_and_header() -> None:
    split = split_envelope(UNIONPAY, has_tpdu=True, header_len=6)
    assert not isinstance(split, FrameRejected)
    envelope, message = split
    assert envelope.tpdu == Tpdu(tpdu_id=0x60, destination=0x0003, source=0x0000)
    assert envelope.header == bytes.fromhex("60 31 00 31 10 01")
    assert message == bytes.fromhex("08 00")


def test_reply_swaps_tpdu_and_echoes_header() -> None:
    split = split_envelope(UNIONPAY, has_tpdu=True, header_len=6)
    assert not isinstance(split, FrameRejected)
    reply = join_envelope(split[0].reply(), bytes.fromhex("08 10"))
    assert reply == bytes.fromhex("60 0000 0003  60 31 00 31 10 01  08 10")


def test_tpdu_swapped_exchanges_destination_and_source() -> None:
    tpdu = Tpdu(destination=0x0123, source=0x0456)
    assert tpdu.swapped() == Tpdu(destination=0x0456, source=0x0123)
    assert tpdu.to_bytes() == bytes.fromhex("60 0123 0456")


def test_split_then_join_restores_the_frame() -> None:
    split = split_envelope(UNIONPAY, has_tpdu=True, header_len=6)
    assert not isinstance(split, FrameRejected)
    assert join_envelope(*split) == UNIONPAY


def test_header_without_tpdu() -> None:
    assert split_envelope(b"HDR0200", has_tpdu=False, header_len=3) == (
        Envelope(None, b"HDR"),
        b"0200",
    )


def test_no_envelope_passes_the_frame_through() -> None:
    assert split_envelope(b"0200", has_tpdu=False, header_len=0) == (Envelope(), b"0200")


def test_frame_shorter_than_envelope_is_rejected_not_raised() -> None:
    result = split_envelope(bytes.fromhex("60 0003"), has_tpdu=True, header_len=6)
    assert result == FrameRejected("frame of 3 bytes is shorter than its 11-byte envelope", 3)


def test_tpdu_values_must_fit_their_bytes() -> None:
    with pytest.raises(FramingError):
        Tpdu(destination=0x10000, source=0)
    with pytest.raises(FramingError):
        Tpdu(tpdu_id=0x100, destination=0, source=0)
