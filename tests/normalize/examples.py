"""Example messages as a codec would hand them over (text str, binary bytes)."""

from __future__ import annotations

from posgw.protocols.iso8583.message import FieldValue, Message

PAN = "4761739001010010"  # Visa test card
TRACK2 = PAN + "=22122011143804400000"
TRACK1 = "B" + PAN + "^DOE/JOHN^2212201100000000000000"
PIN_BLOCK = bytes.fromhex("3F8E1A2B4C5D6E7F")
EXPIRY = "2212"
# Field 90 of a 0400 reversing the purchase below.
ORIGINAL_DATA_ELEMENTS = (
    "0200"  # original MTI
    "000123"  # original STAN
    "0317101530"  # original transmission date and time
    "00000012345"  # acquiring institution id
    "00000000000"  # forwarding institution id
)

# Field 55 of a chip purchase; the PAN (5A) is in it on purpose.
CHIP_FIELD_55 = bytes.fromhex(
    "9F26 08 1A2B3C4D5E6F7081"  # application cryptogram
    "9F27 01 80"  # cryptogram information data
    "9F36 02 0042"  # application transaction counter
    "95 05 0000008000"  # terminal verification results
    "9F02 06 000000012345"  # amount authorised
    "5F2A 02 0978"  # transaction currency EUR
    "5A 08 " + PAN +  # application PAN (sensitive)
    "5F24 03 221231"  # expiry (sensitive)
)  # fmt: skip


def purchase_1987(**changes: FieldValue | None) -> Message:
    """A 0200 chip purchase with online PIN; `changes` set (or, with None, drop) fields."""
    fields: dict[int, FieldValue] = {
        2: PAN,
        3: "000000",  # purchase, default accounts
        4: "000000012345",  # 123.45
        7: "0317101530",  # transmission MMDDhhmmss
        11: "000123",
        12: "111530",  # local hhmmss
        13: "0317",  # local MMDD
        14: EXPIRY,
        22: "051",  # chip, PIN capable
        25: "00",  # normal presentment
        35: TRACK2,
        41: "T0101   ",
        42: "M0001          ",
        49: "978",
        52: PIN_BLOCK,
        55: CHIP_FIELD_55,
    }
    return _changed(Message("0200", fields), changes)


def with_mti(message: Message, mti: str, **changes: FieldValue | None) -> Message:
    return _changed(Message(mti, dict(message.fields)), changes)


def _changed(message: Message, changes: dict[str, FieldValue | None]) -> Message:
    for name, value in changes.items():
        number = int(name.removeprefix("f"))
        if value is None:
            message.fields.pop(number, None)
        else:
            message.fields[number] = value
    return message
