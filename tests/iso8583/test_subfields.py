"""Sub-fields of private fields: positional, bitmapped, character TLV, BER-TLV."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posgw.gateway.profiles import load_profile
from posgw.protocols.iso8583.errors import DecodeError, EncodeError
from posgw.protocols.iso8583.spec import FieldSpec, MessageSpec
from posgw.protocols.iso8583.subfields import SubfieldCodec


def parent(field: dict[str, Any]) -> SubfieldCodec:
    spec = MessageSpec.from_mapping({"fields": {"62": field}})
    return SubfieldCodec(spec.fields[62])


POSITIONAL = parent({
    "type": "n", "len": "LLLVAR", "max": 17, "enc": "bcd", "layout": "positional",
    "subfields": {
        "1": {"type": "n", "max": 2},
        "2": {"type": "n", "max": 6},
        "3": {"type": "n", "max": 3},
    },
})


def test_positional_subfields_split_in_number_order() -> None:
    assert POSITIONAL.split("22000001000") == {"1": "22", "2": "000001", "3": "000"}


def test_positional_trailing_subfields_may_be_absent() -> None:
    assert POSITIONAL.split("22000001") == {"1": "22", "2": "000001"}


def test_positional_join_is_the_inverse_of_split() -> None:
    assert POSITIONAL.join({"1": "22", "2": "000001", "3": "000"}) == "22000001000"


def test_positional_leftover_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError) as err:
        POSITIONAL.split("220000010001234567")
    assert err.value.field == "62"


# Visa field 62 style: binary value carrying its own bitmap; sub-field 2 is a
# transaction id in packed BCD behind a 1-byte binary length counting digits.
BITMAPPED = parent({
    "type": "b", "len": "LLVAR", "max": 255, "enc": "binary", "len_enc": "binary",
    "layout": "bitmap",
    "subfields": {
        "1": {"type": "an", "max": 1, "enc": "ascii"},
        "2": {"type": "n", "len": "LLVAR", "max": 15, "enc": "bcd", "len_enc": "binary"},
        "4": {"type": "b", "max": 2, "enc": "binary"},
    },
})


def test_bitmapped_subfields_follow_their_own_bitmap() -> None:
    value = bytes.fromhex(
        "5000000000000000"  # sub-field bitmap: bits 2 and 4
        "0f 0123456789012345"  # 62.2: 15 digits, 8 bytes of BCD, padded left
        "abcd"  # 62.4: 2 raw bytes
    )
    assert BITMAPPED.split(value) == {"2": "123456789012345", "4": b"\xab\xcd"}


def test_bitmapped_join_then_split_round_trips() -> None:
    parts: dict[str, str | bytes] = {"1": "Y", "2": "123456789012345", "4": b"\x00\x01"}
    value = BITMAPPED.join(parts)
    assert isinstance(value, bytes)
    assert value[:8] == bytes.fromhex("D000000000000000")  # bits 1, 2 and 4: sub-fields
    assert BITMAPPED.split(value) == parts


def test_bitmapped_subfield_error_names_the_subfield() -> None:
    value = bytes.fromhex("4000000000000000 0f 12")  # 62.2 declares 8 bytes, has 1
    with pytest.raises(DecodeError) as err:
        BITMAPPED.split(value)
    assert err.value.field == "62.2"


CHAR_TLV = parent({
    "type": "ans", "len": "LLLVAR", "max": 999, "layout": "tlv", "tag_chars": 2,
    "len_chars": 2,
})


def test_character_tlv_subelements() -> None:
    assert CHAR_TLV.split("4203ABC8701Y") == {"42": "ABC", "87": "Y"}
    assert CHAR_TLV.join({"42": "ABC", "87": "Y"}) == "4203ABC8701Y"


def test_character_tlv_overlong_length_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        CHAR_TLV.split("4209ABC")


def test_character_tlv_rejects_a_tag_of_the_wrong_width() -> None:
    with pytest.raises(EncodeError):
        CHAR_TLV.join({"421": "X"})


BER = parent({"type": "b", "len": "LLLVAR", "max": 255, "enc": "binary", "layout": "ber-tlv"})


def test_ber_tlv_layout_gives_tags_and_values() -> None:
    assert BER.split(bytes.fromhex("9F0206000000001000 9C0100")) == {
        "9F02": bytes.fromhex("000000001000"),
        "9C": b"\x00",
    }


def test_unionpay_field_60_splits_into_its_seven_subfields() -> None:
    spec: FieldSpec = load_profile("unionpay-tpdu").iso8583.fields[60]
    parts = SubfieldCodec(spec).split("22000001000501000")
    assert parts == {"1": "22", "2": "000001", "3": "000", "4": "5", "5": "0", "6": "1",
                     "7": "000"}


@given(st.binary(max_size=64))
def test_garbage_in_a_bitmapped_field_raises_only_decode_error(value: bytes) -> None:
    with contextlib.suppress(DecodeError):
        BITMAPPED.split(value)


@given(st.text(max_size=40))
def test_garbage_in_a_character_tlv_field_raises_only_decode_error(value: str) -> None:
    with contextlib.suppress(DecodeError):
        CHAR_TLV.split(value)
