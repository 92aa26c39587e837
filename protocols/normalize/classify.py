"""What a message is (TxKind) and how the card was read (EntryMode).

Kind comes from the MTI's message class (second digit), refined by the
processing code's transaction type (field 3, first two digits), the 1993
function code (field 24), the 1987 POS condition code (field 25) and, for
network management, field 70 (1987) or the function code (1993).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from posgw.protocols.normalize.errors import NormalizeError
from posgw.protocols.normalize.field_values import is_ascii_digits
from posgw.protocols.normalize.transaction import EntryMode, TxKind

#: Field 3 positions 1-2, ISO 8583 transaction type codes.
_KIND_BY_TRANSACTION_TYPE: Mapping[str, TxKind] = MappingProxyType(
    {
        "00": TxKind.PURCHASE,  # goods and services
        # Cash advance (01), purchase with cashback (09) and quasi-cash (11)
        # debit the card like a purchase; field 3 stays on the transaction.
        "01": TxKind.PURCHASE,
        "09": TxKind.PURCHASE,
        "11": TxKind.PURCHASE,
        "02": TxKind.VOID,  # debit adjustment: how POS dialects void a sale
        "22": TxKind.VOID,  # credit adjustment: voids a refund
        "20": TxKind.REFUND,  # returns
        "30": TxKind.BALANCE_INQUIRY,  # available funds inquiry
        "31": TxKind.BALANCE_INQUIRY,
    }
)

#: Field 24 in 1993/2003 messages, where it refines the kind.
_KIND_BY_FUNCTION_CODE: Mapping[str, TxKind] = MappingProxyType(
    {
        "101": TxKind.PREAUTH,  # original authorization, amount estimated
        "108": TxKind.BALANCE_INQUIRY,  # inquiry
        "201": TxKind.COMPLETION,  # previously approved authorization, same amount
        "202": TxKind.COMPLETION,  # previously approved authorization, amount differs
        "801": TxKind.SIGN_ON,  # system condition: sign-on
        "831": TxKind.ECHO,  # system security: echo test
    }
)

#: Field 70 (1987 network management information code).
_KIND_BY_NETWORK_CODE: Mapping[str, TxKind] = MappingProxyType(
    {"001": TxKind.SIGN_ON, "301": TxKind.ECHO}
)

#: 1987 field 25 "06": preauthorization request; on a financial message it
#: completes an earlier preauthorization.
_PREAUTH_CONDITION = "06"

#: MTI message classes ISO 8583 defines but we do not model: file actions,
#: administrative, fee collection.
_UNMODELLED_CLASSES = frozenset("367")

#: 1987 field 22 positions 1-2 (PAN entry mode), as acquirers publish them.
_ENTRY_MODE_1987: Mapping[str, EntryMode] = MappingProxyType(
    {
        "00": EntryMode.UNKNOWN,
        "01": EntryMode.MANUAL,
        "02": EntryMode.MAGSTRIPE,
        "90": EntryMode.MAGSTRIPE,  # full track read
        "05": EntryMode.CHIP,
        "95": EntryMode.CHIP,  # chip, CVV may be unreliable (Visa)
        "07": EntryMode.CONTACTLESS,  # contactless chip
        "91": EntryMode.CONTACTLESS,  # contactless magstripe mode
        "80": EntryMode.FALLBACK,  # chip failed, magstripe read
        "79": EntryMode.FALLBACK,  # chip failed, PAN keyed (Mastercard)
    }
)

#: 1993/2003 field 22 position 7, card data input mode: ISO values 0-6
#: plus the widespread scheme extensions (as in rbkmoney/jrekt8583).
_ENTRY_MODE_1993: Mapping[str, EntryMode] = MappingProxyType(
    {
        "0": EntryMode.UNKNOWN,
        "1": EntryMode.MANUAL,  # manual, no terminal
        "6": EntryMode.MANUAL,  # key entered
        "2": EntryMode.MAGSTRIPE,
        "9": EntryMode.MAGSTRIPE,  # full magnetic stripe read
        "5": EntryMode.CHIP,
        "8": EntryMode.FALLBACK,  # magstripe read after chip failure
        "A": EntryMode.CONTACTLESS,  # contactless magstripe
        "M": EntryMode.CONTACTLESS,  # contactless chip
    }
)
_CARD_DATA_INPUT_MODE_INDEX = 6


def classify_kind(
    mti: str,
    version: int,
    *,
    processing_code: str | None,
    function_code: str | None,
    pos_condition_code: str | None,
    network_code: str | None,
) -> TxKind:
    """The kind of a message whose MTI is already known to be 4 digits."""
    message_class = mti[1]
    by_function = _KIND_BY_FUNCTION_CODE.get(function_code or "") if version != 1987 else None
    if message_class == "4":
        return TxKind.REVERSAL
    if message_class == "5":
        return TxKind.BATCH_SETTLEMENT
    if message_class == "8":
        return by_function or _KIND_BY_NETWORK_CODE.get(network_code or "", TxKind.UNKNOWN)
    if message_class in _UNMODELLED_CLASSES:
        return TxKind.UNKNOWN
    if message_class not in ("1", "2"):
        raise NormalizeError("mti", f"unknown message class {message_class}")
    if by_function is not None:
        return by_function
    kind = _KIND_BY_TRANSACTION_TYPE.get((processing_code or "")[:2], TxKind.UNKNOWN)
    if kind is TxKind.PURCHASE and message_class == "1":
        return TxKind.PREAUTH
    if kind is TxKind.PURCHASE and pos_condition_code == _PREAUTH_CONDITION:
        return TxKind.COMPLETION
    return kind


def entry_mode_from_field22(value: str, version: int) -> EntryMode:
    """Entry mode from field 22: 1987 n3 POS entry mode or 1993 an12 POS data code."""
    if version == 1987:
        digits = value[1:] if len(value) == 4 and value.startswith("0") else value
        if len(digits) != 3 or not is_ascii_digits(digits):
            raise NormalizeError("22", "POS entry mode must be 3 digits")
        return entry_mode_from_pan_entry_code(digits[:2])
    if len(value) <= _CARD_DATA_INPUT_MODE_INDEX or not value.isascii():
        raise NormalizeError("22", "POS data code must be 12 ASCII characters")
    return _ENTRY_MODE_1993.get(value[_CARD_DATA_INPUT_MODE_INDEX].upper(), EntryMode.UNKNOWN)


def entry_mode_from_pan_entry_code(code: str) -> EntryMode:
    """Entry mode from a 2-digit PAN entry mode (1987 field 22, EMV 9F39)."""
    return _ENTRY_MODE_1987.get(code, EntryMode.UNKNOWN)
