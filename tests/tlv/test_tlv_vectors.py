"""BER-TLV parsing and building against hand-checked byte vectors."""

from __future__ import annotations

import pytest

from posgw.protocols.iso8583.errors import DecodeError, EncodeError
from posgw.protocols.iso8583.tlv import MAX_DEPTH, TlvNode, build_tlv, flatten, parse_tlv

# Field 55 of an online EMV purchase (Visa CVN 10, online PIN), tag by tag.
PURCHASE_FIELD_55 = bytes.fromhex(
    "9F26 08 1A2B3C4D5E6F7081"  # application cryptogram (ARQC)
    "9F27 01 80"  # cryptogram information data: ARQC
    "9F10 07 06010A03A0A000"  # issuer application data
    "9F37 04 9A1B2C3D"  # unpredictable number
    "9F36 02 0042"  # application transaction counter
    "95 05 0000008000"  # terminal verification results
    "9A 03 250317"  # transaction date 2025-03-17
    "9C 01 00"  # transaction type: purchase
    "9F02 06 000000012345"  # amount authorised 123.45
    "5F2A 02 0978"  # transaction currency EUR
    "82 02 3900"  # application interchange profile
    "9F1A 02 0276"  # terminal country DE
    "9F03 06 000000000000"  # amount other
    "9F33 03 E0F8C8"  # terminal capabilities
    "9F34 03 420300"  # CVM results: enciphered PIN online
    "9F35 01 22"  # terminal type: attended, online capable
    "84 07 A0000000031010"  # DF name: Visa credit AID
    "9F09 02 008C"  # terminal application version
    "9F41 04 00000123"  # transaction sequence counter
)
PURCHASE_TAGS = [
    "9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A",
    "82", "9F1A", "9F03", "9F33", "9F34", "9F35", "84", "9F09", "9F41",
]  # fmt: skip


def test_purchase_field_55_parses_into_its_nineteen_tags_in_order() -> None:
    nodes = parse_tlv(PURCHASE_FIELD_55)

    assert [node.tag for node in nodes] == PURCHASE_TAGS
    assert all(not node.children for node in nodes)


def test_purchase_field_55_values_are_the_raw_value_bytes() -> None:
    values = flatten(parse_tlv(PURCHASE_FIELD_55))

    assert values["9F02"] == bytes.fromhex("000000012345")
    assert values["9F26"] == bytes.fromhex("1A2B3C4D5E6F7081")
    assert values["5F2A"] == bytes.fromhex("0978")
    assert values["84"] == bytes.fromhex("A0000000031010")


def test_purchase_field_55_rebuilds_byte_for_byte() -> None:
    assert build_tlv(parse_tlv(PURCHASE_FIELD_55)) == PURCHASE_FIELD_55


def test_two_byte_tag_is_read_when_low_five_bits_are_all_ones() -> None:
    # 9F = 100 11111: more tag bytes follow; 02 has b8 clear: last one.
    (node,) = parse_tlv(bytes.fromhex("9F0201 07"))

    assert node.tag == "9F02"
    assert node.value == b"\x07"


def test_three_byte_tag_continues_while_b8_is_set() -> None:
    # DF: more bytes follow; 81 has b8 set: one more; 01 ends the tag.
    (node,) = parse_tlv(bytes.fromhex("DF8101 02 AABB"))

    assert node.tag == "DF8101"
    assert node.value == bytes.fromhex("AABB")


def test_long_form_0x81_length_reads_one_length_byte() -> None:
    value = bytes(range(200))
    data = bytes.fromhex("9F10 81C8") + value  # 0x81: one length byte, 200

    (node,) = parse_tlv(data)

    assert node.value == value
    assert node.length_octets is None  # 0x81 is the minimal form for 200
    assert build_tlv([node]) == data


def test_long_form_0x82_length_reads_two_length_bytes() -> None:
    value = bytes(261)
    data = bytes.fromhex("86 820105") + value  # 0x82: two length bytes, 261

    (node,) = parse_tlv(data)

    assert len(node.value) == 261
    assert build_tlv([node]) == data


def test_non_minimal_long_form_length_is_kept_for_the_rebuild() -> None:
    data = bytes.fromhex("9F37 8104 11223344 9A 820003 250317")

    first, second = parse_tlv(data)

    assert (first.length_octets, second.length_octets) == (1, 2)
    assert build_tlv([first, second]) == data


def test_hand_made_nodes_get_minimal_lengths() -> None:
    short = TlvNode.primitive("9f37", bytes(4))
    long = TlvNode.primitive("9F10", bytes(130))

    encoded = build_tlv([short, long])

    assert short.tag == "9F37"
    assert encoded[:3] == bytes.fromhex("9F3704")
    assert encoded[7:11] == bytes.fromhex("9F108182")


def test_constructed_template_parses_its_children_including_a_three_byte_tag() -> None:
    data = bytes.fromhex(
        "770F"  # response message template format 2, 15 bytes
        "9F27 01 80"  # cryptogram information data
        "9F36 02 0001"  # application transaction counter
        "DF8101 02 AABB"  # proprietary three-byte tag
    )

    (template,) = parse_tlv(data)

    assert template.tag == "77"
    assert [child.tag for child in template.children] == ["9F27", "9F36", "DF8101"]
    assert template.value == data[2:]
    assert flatten([template]) == {
        "9F27": b"\x80",
        "9F36": b"\x00\x01",
        "DF8101": b"\xaa\xbb",
    }
    assert build_tlv([template]) == data


def test_nested_templates_rebuild_from_hand_made_children() -> None:
    script = TlvNode.constructed(
        "71", [TlvNode.primitive("9F18", b"\x00\x00\x00\x01"), TlvNode.primitive("86", b"\x84")]
    )
    record = TlvNode.constructed("70", [script])

    assert parse_tlv(build_tlv([record])) == (record,)


def test_padding_zeros_around_objects_survive_the_round_trip() -> None:
    data = bytes.fromhex("0000 9A03250317 00 9C0100 000000")

    date, kind = parse_tlv(data)

    assert (date.padding_before, kind.padding_before, kind.padding_after) == (2, 1, 3)
    assert flatten([date, kind]) == {"9A": bytes.fromhex("250317"), "9C": b"\x00"}
    assert build_tlv([date, kind]) == data


def test_flatten_keeps_the_first_occurrence_of_a_tag() -> None:
    nodes = parse_tlv(bytes.fromhex("9C0100 7003 9C0120"))

    assert flatten(nodes) == {"9C": b"\x00"}


def test_empty_field_parses_to_no_objects() -> None:
    assert parse_tlv(b"") == ()
    assert build_tlv([]) == b""


@pytest.mark.parametrize(
    ("hex_data", "offset", "reason_part"),
    [
        ("9F", 0, "tag truncated"),
        ("9A03250317 9F", 5, "tag truncated"),
        ("9F81818101 00", 0, "tag longer"),
        ("9F26", 2, "length missing"),
        ("9F2608 1122", 2, "runs past the end"),
        ("7080 9C0100 0000", 1, "indefinite length"),
        ("9F2685 0000000001 00", 2, "not supported"),
        ("9F2682 01", 2, "length truncated"),
        ("7004 9F2608 11", 4, "runs past the end"),  # offset inside the template
        ("0000", 0, "padding without any data object"),
    ],
)
def test_malformed_input_raises_decode_error_at_the_absolute_offset(
    hex_data: str, offset: int, reason_part: str
) -> None:
    with pytest.raises(DecodeError) as raised:
        parse_tlv(bytes.fromhex(hex_data))

    assert raised.value.field == "55"
    assert raised.value.offset == offset
    assert reason_part in raised.value.reason


def test_decode_error_names_the_field_it_was_told() -> None:
    with pytest.raises(DecodeError) as raised:
        parse_tlv(bytes.fromhex("9F"), field="60")

    assert raised.value.field == "60"


def test_templates_nested_deeper_than_the_limit_are_refused() -> None:
    data = bytes.fromhex("9C0100")
    for _ in range(MAX_DEPTH + 1):
        data = bytes([0x70, len(data)]) + data

    with pytest.raises(DecodeError, match="nested deeper"):
        parse_tlv(data)


def test_templates_nested_up_to_the_limit_are_accepted() -> None:
    data = bytes.fromhex("9C0100")
    for _ in range(MAX_DEPTH):
        data = bytes([0x70, len(data)]) + data

    assert build_tlv(parse_tlv(data)) == data


@pytest.mark.parametrize(
    ("node", "reason_part"),
    [
        (TlvNode("9F", b""), "well-formed"),  # multi-byte tag cut short
        (TlvNode("9F81", b""), "well-formed"),  # last tag byte has b8 set
        (TlvNode("0203", b""), "well-formed"),  # single-byte tag with a tail
        (TlvNode("00", b""), "padding"),
        (TlvNode("9G", b""), "hex"),
        (TlvNode("9C", b"\x00", (TlvNode("9C", b""),)), "primitive but has children"),
        (TlvNode("70", b"\x9c\x00"), "does not match its children"),
        (TlvNode("9C", b"\x00" * 200, length_octets=0), "length_octets"),
        (TlvNode("9C", b"\x00" * 300, length_octets=1), "length_octets"),
    ],
)
def test_inconsistent_nodes_raise_encode_error(node: TlvNode, reason_part: str) -> None:
    with pytest.raises(EncodeError, match=reason_part):
        build_tlv([node])


def test_primitive_helper_refuses_a_constructed_tag() -> None:
    with pytest.raises(EncodeError, match="constructed"):
        TlvNode.primitive("70", b"")


def test_constructed_helper_refuses_a_primitive_tag() -> None:
    with pytest.raises(EncodeError, match="primitive"):
        TlvNode.constructed("9F26", [])
