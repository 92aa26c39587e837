"""Known byte vectors: every data encoding, length prefix and bitmap form."""

from __future__ import annotations

from typing import Any

import pytest

from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import DecodeError, EncodeError
from posgw.protocols.iso8583.message import Message
from posgw.protocols.iso8583.spec import MessageSpec


def codec_for(fields: dict[str, dict[str, Any]], **message: Any) -> Codec:
    table = {"mti": "ascii", "bitmap": "binary", **message, "fields": fields}
    return Codec(MessageSpec.from_mapping(table))


def roundtrip(codec: Codec, message: Message, wire_hex: str) -> None:
    wire = bytes.fromhex(wire_hex.replace(" ", ""))
    assert codec.encode(message) == wire
    assert codec.decode(wire) == message


def test_ascii_mti_and_binary_primary_bitmap() -> None:
    codec = codec_for({"3": {"type": "n", "max": 6}})
    roundtrip(
        codec,
        Message("0800", {3: "990000"}),
        "30383030"  # MTI "0800" in ASCII
        " 2000000000000000"  # primary bitmap: bit 3
        " 393930303030",  # field 3 "990000"
    )


def test_bcd_mti_hex_bitmap_and_secondary_bitmap() -> None:
    codec = codec_for({"70": {"type": "n", "max": 3}}, mti="bcd", bitmap="hex")
    roundtrip(
        codec,
        Message("0800", {70: "301"}),
        "0800"  # MTI in BCD
        " 38303030303030303030303030303030"  # "8000000000000000": bit 1 -> secondary
        " 30343030303030303030303030303030"  # "0400000000000000": bit 70
        " 333031",  # field 70 "301"
    )


def test_tertiary_bitmap_carries_fields_above_128() -> None:
    codec = codec_for({"130": {"type": "an", "max": 2}}, tertiary_bitmap=True)
    roundtrip(
        codec,
        Message("1100", {130: "OK"}),
        "31313030"  # MTI "1100"
        " 8000000000000000"  # primary: bit 1 (secondary present)
        " 8000000000000000"  # secondary: bit 65 (tertiary present)
        " 4000000000000000"  # tertiary: bit 130
        " 4f4b",  # field 130 "OK"
    )


@pytest.mark.parametrize(
    ("field", "value", "data_hex"),
    [
        # n 5 BCD left-padded: 0 nibble first
        ({"type": "n", "max": 5, "enc": "bcd"}, "12345", "012345"),
        # n 5 BCD right-padded with F (PAN style)
        (
            {"type": "n", "max": 5, "enc": "bcd", "pad": "right", "pad_nibble": "F"},
            "12345",
            "12345f",
        ),
        # n 4 EBCDIC cp500: F0-F9 digits
        ({"type": "n", "max": 4, "enc": "ebcdic"}, "1234", "f1f2f3f4"),
        # ans 3 EBCDIC cp037: "A b" -> C1 40 82
        ({"type": "ans", "max": 3, "enc": "ebcdic", "codepage": "cp037"}, "A b", "c14082"),
        # b 2 raw binary
        ({"type": "b", "max": 2, "enc": "binary"}, b"\x9f\x02", "9f02"),
        # b 2 bytes as hex-ASCII, 4 characters
        ({"type": "b", "max": 4, "enc": "hex"}, b"\x9f\x02", "39463032"),
        # xn 9 BCD amount: 'C' then 8 digits packed (jPOS IFB_AMOUNT)
        ({"type": "xn", "max": 9, "enc": "bcd"}, "C00001000", "4300001000"),
        # z 5 track-2 BCD: '=' travels as nibble D, right-padded
        ({"type": "z", "max": 5, "enc": "bcd", "pad": "right"}, "12=45", "12d450"),
    ],
)
def test_fixed_field_encodings(field: dict[str, Any], value: str | bytes, data_hex: str) -> None:
    codec = codec_for({"2": field})
    roundtrip(codec, Message("0100", {2: value}), "30313030 4000000000000000 " + data_hex)


@pytest.mark.parametrize(
    ("field", "prefix_hex"),
    [
        ({"len": "LLVAR", "len_enc": "ascii"}, "3036"),  # "06"
        ({"len": "LLLVAR", "len_enc": "ascii"}, "303036"),  # "006"
        ({"len": "LLLLVAR", "len_enc": "ascii"}, "30303036"),  # "0006"
        ({"len": "LLVAR", "len_enc": "bcd"}, "06"),  # 1 byte BCD
        ({"len": "LLLVAR", "len_enc": "bcd"}, "0006"),  # 2 bytes BCD
        ({"len": "LLVAR", "len_enc": "binary"}, "06"),  # 1 byte binary
        ({"len": "LLLVAR", "len_enc": "binary"}, "0006"),  # 2 bytes binary
        ({"len": "LLVAR", "len_enc": "ebcdic"}, "f0f6"),  # "06" in EBCDIC
    ],
)
def test_length_prefixes(field: dict[str, Any], prefix_hex: str) -> None:
    codec = codec_for({"2": {"type": "ans", "max": 99, **field}})
    wire = f"30313030 4000000000000000 {prefix_hex} 414243313233"  # MTI, bitmap, prefix, "ABC123"
    roundtrip(codec, Message("0100", {2: "ABC123"}), wire)


def test_binary_length_counting_bcd_digits() -> None:
    # Visa-style field 2: 1-byte binary length 16 (digits), then 8 bytes packed PAN.
    codec = codec_for(
        {"2": {"type": "n", "len": "LLVAR", "max": 19, "enc": "bcd", "len_enc": "binary"}}
    )
    roundtrip(
        codec,
        Message("0100", {2: "4761739001010010"}),
        "30313030 4000000000000000"
        " 10"  # length 16, counting digits
        " 4761739001010010",  # 8 bytes of packed BCD
    )


def test_odd_digit_count_with_binary_length_pads_right() -> None:
    codec = codec_for(
        {"2": {"type": "n", "len": "LLVAR", "max": 19, "enc": "bcd", "len_enc": "binary",
               "pad": "right", "pad_nibble": "F"}}
    )
    roundtrip(codec, Message("0100", {2: "123"}), "30313030 4000000000000000 03 123f")


def test_fixed_numeric_padded_with_left_zeros_on_encode() -> None:
    codec = codec_for({"4": {"type": "n", "max": 12}})
    wire = codec.encode(Message("0200", {4: "1000"}))
    assert wire.endswith(b"000000001000")


def test_fixed_text_padded_with_right_spaces_on_encode() -> None:
    codec = codec_for({"41": {"type": "ans", "max": 8}})
    assert codec.encode(Message("0200", {41: "T01"})).endswith(b"T01     ")


def test_encode_rejects_letters_in_numeric_field() -> None:
    codec = codec_for({"4": {"type": "n", "max": 12}})
    with pytest.raises(EncodeError) as err:
        codec.encode(Message("0200", {4: "12AB"}))
    assert err.value.field == "4"


def test_encode_rejects_overlong_variable_field() -> None:
    codec = codec_for({"2": {"type": "n", "len": "LLVAR", "max": 19}})
    with pytest.raises(EncodeError, match="over maximum 19"):
        codec.encode(Message("0200", {2: "1" * 20}))


def test_encode_rejects_setting_a_bitmap_field() -> None:
    codec = codec_for({"3": {"type": "n", "max": 6}})
    with pytest.raises(EncodeError) as err:
        codec.encode(Message("0200", {1: b"\x00" * 8, 3: "000000"}))
    assert err.value.field == "1"


def test_decode_error_names_field_and_offset() -> None:
    codec = codec_for({"3": {"type": "n", "max": 6}, "4": {"type": "n", "max": 12}})
    wire = bytes.fromhex("30323030 3000000000000000") + b"000000" + b"0000000010X0"
    with pytest.raises(DecodeError) as err:
        codec.decode(wire)
    assert (err.value.field, err.value.offset) == ("4", 18)


def test_decode_rejects_trailing_bytes() -> None:
    codec = codec_for({"3": {"type": "n", "max": 6}})
    with pytest.raises(DecodeError, match="after the last field"):
        codec.decode(bytes.fromhex("30323030 2000000000000000") + b"000000!")


def test_decode_rejects_field_missing_from_profile() -> None:
    codec = codec_for({"3": {"type": "n", "max": 6}})
    with pytest.raises(DecodeError) as err:
        codec.decode(bytes.fromhex("30323030 1000000000000000") + b"000000000100")
    assert err.value.field == "4"
