"""`[framing]` profile tables: defaults, shipped shapes, and every kind of mistake."""

from __future__ import annotations

import pytest

from posgw.protocols.framing import (
    CheckKind,
    CrcCheck,
    Delivered,
    DleFramer,
    Envelope,
    EnvelopeKind,
    FramingSpec,
    Handshake,
    LengthHeader,
    LengthPrefixedFramer,
    LrcCheck,
    MessageReceived,
    StxEtxFramer,
    Tpdu,
    Write,
    build_framer,
    build_link,
    wire_bytes,
)
from posgw.protocols.iso8583.errors import SpecError

SOURCE = "firmware_profiles/test.toml"


def test_empty_table_is_a_binary2_stream_without_handshake() -> None:
    spec = FramingSpec.from_mapping({})
    assert spec == FramingSpec()
    framer = build_framer(spec)
    assert isinstance(framer, LengthPrefixedFramer)
    assert framer.header is LengthHeader.BINARY2
    assert framer.max_frame == 8192


def test_unionpay_profile() -> None:
    spec = FramingSpec.from_mapping({"length_header": "binary2", "tpdu": True, "header_bytes": 6})
    config = spec.link_config()
    assert (config.has_tpdu, config.header_len, config.handshake) == (True, 6, Handshake.NONE)


def test_ecr_profile_with_seed_7f_covering_stx() -> None:
    table = {
        "envelope": "stx-etx",
        "lrc_seed": 0x7F,
        "lrc_covers_stx": True,
        "handshake": "ack-nak",
    }
    framer = build_framer(FramingSpec.from_mapping(table))
    assert isinstance(framer, StxEtxFramer)
    assert (framer.check, framer.covers_stx, framer.inner_length) == (LrcCheck(0x7F), True, None)


def test_zvt_profile() -> None:
    table = {"envelope": "dle-stx", "check": "crc16", "handshake": "ack-nak"}
    spec = FramingSpec.from_mapping(table)
    assert (spec.envelope, spec.check, spec.length_header) == (
        EnvelopeKind.DLE_STX,
        CheckKind.CRC16,
        None,
    )
    framer = build_framer(spec)
    assert isinstance(framer, DleFramer)
    assert framer.check == CrcCheck()


def test_stx_etx_with_inner_bcd_length() -> None:
    spec = FramingSpec.from_mapping({"envelope": "stx-etx", "length_header": "bcd2"})
    framer = build_framer(spec)
    assert isinstance(framer, StxEtxFramer)
    assert framer.inner_length is LengthHeader.BCD2


def test_timeouts_are_converted_to_seconds() -> None:
    table = {"inter_byte_ms": 100, "ack_timeout_ms": 1500, "response_timeout_ms": 180_000}
    config = FramingSpec.from_mapping(table).link_config()
    assert (config.inter_byte_timeout, config.ack_timeout, config.response_timeout) == (
        0.1,
        1.5,
        180.0,
    )


@pytest.mark.parametrize(
    "table",
    [
        {},
        {"length_header": "ascii4", "tpdu": True, "header_bytes": 6},
        {"envelope": "stx-etx", "handshake": "enq-ack-nak", "lrc_seed": 0x7F},
        {"envelope": "stx-etx", "length_header": "bcd2", "handshake": "ack-nak"},
        {"envelope": "dle-stx", "check": "crc16", "handshake": "ack-nak"},
    ],
)
def test_every_profile_shape_runs_through_the_same_link_interface(table: dict[str, object]) -> None:
    spec = FramingSpec.from_mapping(table)
    sender, receiver = build_link(spec), build_link(spec)
    envelope = _envelope_for(spec)
    sent = sender.send(b"0800", now=0.0, envelope=envelope)
    assert isinstance(sent[0], Write)
    received = receiver.receive_data(wire_bytes(sent), now=0.1)
    if spec.handshake is Handshake.ENQ_ACK_NAK:  # ENQ first, then the frame
        granted = sender.receive_data(wire_bytes(received), now=0.2)
        received = receiver.receive_data(wire_bytes(granted), now=0.3)
    assert [e for e in received if isinstance(e, MessageReceived)] == [
        MessageReceived(b"0800", envelope)
    ]
    if spec.handshake is not Handshake.NONE:
        assert Delivered() in sender.receive_data(wire_bytes(received), now=0.4)


def _envelope_for(spec: FramingSpec) -> Envelope:
    tpdu = Tpdu(destination=3, source=0) if spec.tpdu else None
    return Envelope(tpdu, bytes(range(spec.header_bytes)))


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"lenght_header": "binary2"}, "framing.lenght_header"),  # unknown key (typo)
        ({"length_header": "binary4"}, "framing.length_header"),  # not a choice
        ({"length_header": 2}, "framing.length_header"),  # wrong type
        ({"tpdu": 1}, "framing.tpdu"),  # int is not a bool
        ({"tpdu": "true"}, "framing.tpdu"),  # string is not a bool
        ({"header_bytes": -1}, "framing.header_bytes"),
        ({"header_bytes": True}, "framing.header_bytes"),  # bool is not an int
        ({"header_bytes": 6.0}, "framing.header_bytes"),  # float is not an int
        ({"envelope": "stx"}, "framing.envelope"),
        ({"envelope": "stx-etx", "check": "crc32"}, "framing.check"),
        ({"envelope": "stx-etx", "lrc_seed": 256}, "framing.lrc_seed"),
        ({"envelope": "stx-etx", "handshake": "ack"}, "framing.handshake"),
        ({"max_frame": 0}, "framing.max_frame"),
        ({"max_frame": 70_000}, "framing.max_frame"),
        ({"length_header": "bcd2", "max_frame": 10_000}, "framing.max_frame"),  # > 9999
        ({"max_retransmits": -1}, "framing.max_retransmits"),
        ({"inter_byte_ms": 0}, "framing.inter_byte_ms"),
        ({"ack_timeout_ms": "3s"}, "framing.ack_timeout_ms"),
        ({"response_timeout_ms": 0}, "framing.response_timeout_ms"),
        ({"length_header": "none"}, "framing.length_header"),  # no way to find frames
        ({"handshake": "ack-nak"}, "framing.handshake"),  # needs an envelope
        ({"check": "lrc"}, "framing.check"),  # envelopes only
        ({"lrc_seed": 0x7F}, "framing.lrc_seed"),  # envelopes only
        ({"lrc_covers_stx": True}, "framing.lrc_covers_stx"),  # envelopes only
        ({"envelope": "dle-stx", "lrc_covers_stx": True}, "framing.lrc_covers_stx"),
        ({"envelope": "dle-stx", "length_header": "binary2"}, "framing.length_header"),
        ({"envelope": "stx-etx", "check": "crc16", "lrc_seed": 1}, "framing.lrc_seed"),
    ],
)
def test_bad_tables_raise_spec_error_naming_key_and_file(
    table: dict[str, object], key: str
) -> None:
    with pytest.raises(SpecError) as raised:
        FramingSpec.from_mapping(table, source=SOURCE)
    assert (raised.value.key, raised.value.source) == (key, SOURCE)


def test_a_non_table_is_rejected() -> None:
    with pytest.raises(SpecError) as raised:
        FramingSpec.from_mapping(["binary2"], source=SOURCE)
    assert raised.value.key == "framing"


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(SpecError):
        FramingSpec(envelope=EnvelopeKind.DLE_STX)  # keeps the binary2 default: inconsistent
