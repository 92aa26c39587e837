"""Decoded `Message` to `Transaction`.

Whatever the message holds, `normalize` either returns a Transaction or
raises `NormalizeError`: a codec profile can hand us a binary value where
text belongs, letters in an amount or a TLV field that does not parse, and
the session must get a clear error, not a crash. Field contents never
appear in errors (they may be a PAN).

Field usage follows the MTI's version: in 1987 field 12/13 are local time
and date, 22 is the n3 POS entry mode, 25 the POS condition code and 90 the
original data elements; in 1993/2003, 12 is local date-time, 13 a card
date (ignored), 22 the an12 POS data code, 24 the function code and 56 the
original data elements.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import hexdigits
from types import MappingProxyType

from posgw.protocols.currency import currency_alpha
from posgw.protocols.iso8583.emv_tags import SENSITIVE_TAGS
from posgw.protocols.iso8583.errors import DecodeError
from posgw.protocols.iso8583.message import Message
from posgw.protocols.iso8583.tlv import primitive_values
from posgw.protocols.normalize.classify import (
    classify_kind,
    entry_mode_from_field22,
    entry_mode_from_pan_entry_code,
)
from posgw.protocols.normalize.errors import NormalizeError
from posgw.protocols.normalize.field_values import (
    digits_field,
    is_ascii_digits,
    stripped_field,
    text_field,
)
from posgw.protocols.normalize.response_codes import category_for
from posgw.protocols.normalize.transaction import (
    CardNumber,
    EntryMode,
    Transaction,
    is_pan_digits,
)

_VERSION_BY_MTI_DIGIT: Mapping[str, int] = MappingProxyType({"0": 1987, "1": 1993, "2": 2003})
_AMOUNT_MAX_DIGITS = 12  # field 4 is n12
_TRACK2_SEPARATORS = "=D"
_TRACK2_SENTINELS = ";?"
_HEX = frozenset(hexdigits)


def normalize(message: Message, *, tlv_fields: frozenset[int] = frozenset({55})) -> Transaction:
    """The Transaction a decoded message describes; raises only NormalizeError."""
    mti = message.mti
    if not isinstance(mti, str) or len(mti) != 4 or not is_ascii_digits(mti):
        raise NormalizeError("mti", "MTI must be 4 digits")
    version = _VERSION_BY_MTI_DIGIT.get(mti[0])
    if version is None:
        raise NormalizeError("mti", f"unsupported ISO 8583 version digit {mti[0]}")
    is_1987 = version == 1987

    emv_all = _emv_primitives(message, tlv_fields)
    processing_code = digits_field(message, 3, exact=6)
    function_code = None if is_1987 else digits_field(message, 24, exact=3)
    pos_condition_code = digits_field(message, 25, exact=2) if is_1987 else None
    card = _card_number(message, emv_all)
    response_code = stripped_field(message, 39)
    original_field = 90 if is_1987 else 56
    original = text_field(message, original_field)
    original_mti, original_stan = _original_keys(original, original_field)

    return Transaction(
        kind=classify_kind(
            mti,
            version,
            processing_code=processing_code,
            function_code=function_code,
            pos_condition_code=pos_condition_code,
            network_code=text_field(message, 70),
        ),
        mti=mti,
        version=version,
        processing_code=processing_code,
        amount_minor=_amount(message),
        currency=_currency(message, emv_all),
        card=card,
        pan_masked=card.masked if card else None,
        stan=digits_field(message, 11, exact=6),
        rrn=stripped_field(message, 37),
        auth_code=stripped_field(message, 38),
        response_code=response_code,
        response=category_for(response_code) if response_code else None,
        entry_mode=_entry_mode(message, version, emv_all),
        pin_present=bool(message.fields.get(52)),
        terminal_id=stripped_field(message, 41),
        merchant_id=stripped_field(message, 42),
        local_time=text_field(message, 12),
        local_date=text_field(message, 13) if is_1987 else None,
        transmission_time=text_field(message, 7),
        pos_condition_code=pos_condition_code,
        function_code=function_code,
        emv=_public_emv(emv_all),
        original_mti=original_mti,
        original_stan=original_stan,
        original_data=original,
    )


# -- amounts and currency ----------------------------------------------------


def _amount(message: Message) -> int | None:
    value = text_field(message, 4)
    if value is None:
        return None
    if not value or len(value) > _AMOUNT_MAX_DIGITS or not is_ascii_digits(value):
        raise NormalizeError("4", f"amount must be 1 to {_AMOUNT_MAX_DIGITS} digits")
    return int(value)


def _currency(message: Message, emv: dict[str, bytes]) -> str | None:
    value = text_field(message, 49)
    if value is not None:
        alpha = currency_alpha(value)
        if alpha is None:
            raise NormalizeError("49", "currency must be an ISO 4217 code")
        return alpha
    emv_code = emv.get("5F2A")  # n3 packed in 2 bytes, e.g. 0978
    return currency_alpha(emv_code.hex()) if emv_code else None


# -- card --------------------------------------------------------------------


def _card_number(message: Message, emv: dict[str, bytes]) -> CardNumber | None:
    """The PAN from field 2, else track 2 (35), else EMV 5A, else EMV 57."""
    pan = text_field(message, 2)
    if pan is not None:
        return _checked_card(pan, "2")
    track2 = message.fields.get(35)
    if isinstance(track2, str):
        return _checked_card(_pan_from_track2(track2.upper(), "35"), "35")
    if isinstance(track2, bytes):  # profiles that declare track 2 binary (packed)
        return _checked_card(_pan_from_track2(track2.hex().upper(), "35"), "35")
    if "5A" in emv:
        return _checked_card(emv["5A"].hex().upper().rstrip("F"), "55")
    if "57" in emv:
        return _checked_card(_pan_from_track2(emv["57"].hex().upper(), "55"), "55")
    return None


def _pan_from_track2(track2: str, field: str) -> str:
    body = track2.strip(_TRACK2_SENTINELS)
    for index, char in enumerate(body):
        if char in _TRACK2_SEPARATORS:
            return body[:index]
    raise NormalizeError(field, "track 2 has no field separator")


def _checked_card(pan: str, field: str) -> CardNumber:
    if not is_pan_digits(pan):
        raise NormalizeError(field, "PAN must be 8 to 19 digits")
    return CardNumber(pan)


# -- EMV, entry mode, original data ------------------------------------------


def _emv_primitives(message: Message, tlv_fields: frozenset[int]) -> dict[str, bytes]:
    """Primitive tags of every TLV field, lowest field first; first one wins."""
    found: dict[str, bytes] = {}
    for number in sorted(tlv_fields):
        raw = message.fields.get(number)
        if raw is None:
            continue
        if isinstance(raw, str):
            # ASCII dialects carry field 55 as hex text.
            if len(raw) % 2 or not set(raw) <= _HEX:
                raise NormalizeError(str(number), "TLV text must be hex")
            raw = bytes.fromhex(raw)
        if not isinstance(raw, bytes):
            raise NormalizeError(str(number), "expected TLV bytes")
        try:
            primitives = primitive_values(raw, str(number))
        except DecodeError as error:
            reason = f"TLV at offset {error.offset}: {error.reason}"
            raise NormalizeError(str(number), reason) from error
        for tag, value in primitives.items():
            found.setdefault(tag, value)
    return found


def _public_emv(emv: dict[str, bytes]) -> Mapping[str, str]:
    """The EMV tags a Transaction may carry: hex of every non-sensitive one."""
    return {tag: value.hex().upper() for tag, value in emv.items() if tag not in SENSITIVE_TAGS}


def _entry_mode(message: Message, version: int, emv: dict[str, bytes]) -> EntryMode:
    field22 = text_field(message, 22)
    if field22 is not None:
        return entry_mode_from_field22(field22, version)
    emv_mode = emv.get("9F39")  # n2 packed in one byte, same codes as 1987 field 22
    return entry_mode_from_pan_entry_code(emv_mode.hex()) if emv_mode else EntryMode.UNKNOWN


def _original_keys(original: str | None, field: int) -> tuple[str | None, str | None]:
    """(original MTI, original STAN): the first 10 digits of field 90 / 56."""
    if original is None:
        return None, None
    if len(original) < 10 or not is_ascii_digits(original[:10]):
        raise NormalizeError(str(field), "original data must start with MTI and STAN digits")
    return original[:4], original[4:10]
