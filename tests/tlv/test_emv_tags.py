"""EMV tag names, the sensitive-tag list, and the masked dump of a TLV field."""

from __future__ import annotations

from posgw.protocols.iso8583.emv_tags import EMV_TAG_NAMES, SENSITIVE_TAGS, describe_tlv, tag_name
from posgw.protocols.iso8583.tlv import TlvNode, parse_tlv

PAN = "4761739001010010"
TRACK2_PACKED = "4761739001010010D22122011143804400000F"  # '=' as 'D', 'F' pad
CARD_DATA_FIELD = bytes.fromhex(
    "5A 08 " + PAN  # application PAN
    + "57 13 " + TRACK2_PACKED  # track 2 equivalent data
    + "5F20 0F " + b"DOE/JOHN       ".hex()  # cardholder name
    + "9F27 01 80"  # cryptogram information data
)  # fmt: skip

COMMON_TAGS = [
    "4F", "50", "57", "5A", "5F20", "5F24", "5F25", "5F28", "5F2A", "5F34", "71", "72",
    "82", "84", "8A", "8E", "91", "95", "9A", "9B", "9C", "9F02", "9F03", "9F06", "9F07",
    "9F09", "9F0D", "9F0E", "9F0F", "9F10", "9F12", "9F1A", "9F1E", "9F21", "9F26",
    "9F27", "9F33", "9F34", "9F35", "9F36", "9F37", "9F41", "9F53", "9F6E",
]  # fmt: skip


def test_every_common_emv_tag_has_a_name() -> None:
    assert [tag for tag in COMMON_TAGS if tag not in EMV_TAG_NAMES] == []


def test_sensitive_tags_cover_pan_tracks_name_and_pin_data() -> None:
    assert {"5A", "57", "56", "5F20", "9F1F", "9F20", "9F6B", "99"} <= SENSITIVE_TAGS


def test_unlisted_private_class_tags_are_named_proprietary() -> None:
    assert tag_name("DF8101") == "Proprietary"
    assert tag_name("9F7F") == "Unknown"


def test_describe_masks_pan_track_and_cardholder_name() -> None:
    pan, track2, name, cid = describe_tlv(parse_tlv(CARD_DATA_FIELD))

    assert pan["value"] == "476173******0010"
    assert track2["value"] == "476173******0010D" + "*" * 20
    assert name["value"] == "*" * 30
    assert cid == {
        "tag": "9F27",
        "name": "Cryptogram Information Data (CID)",
        "length": 1,
        "value": "80",
        "children": [],
    }


def test_describe_shows_a_template_through_its_children_only() -> None:
    template = TlvNode.constructed("70", parse_tlv(CARD_DATA_FIELD))

    (described,) = describe_tlv([template])

    assert described["value"] == ""
    assert [child["tag"] for child in described["children"]] == ["5A", "57", "5F20", "9F27"]
    assert PAN not in repr(described)


def test_node_repr_masks_sensitive_values_and_templates() -> None:
    nodes = parse_tlv(CARD_DATA_FIELD)
    template = TlvNode.constructed("70", nodes)

    assert PAN not in repr(nodes)
    assert PAN not in repr(template)
    assert "'80'" in repr(nodes[3])
