"""Response codes (1987, field 39 an2) and action codes (1993/2003, n3).

Sources, read and cross-checked (not copied):
- ISO 8583:1987 response codes: the common table as published by acquirers,
  e.g. developers.mypos.eu "Response codes", the Vodacom payment gateway
  appendix, the Nexi/GICC provider code list.
- ISO 8583:1993 action codes: SAP POS help "Action Codes (taken from the
  ISO8583-1993 specification)", bilderlings.com "Code description", the
  Accel network code list (rftdevportal.thebancorp.com).
- A0 (MAC check failed) is UnionPay's 1987-style extension (DESIGN.md).

Where a code names both a card capture and a more specific reason (33
"expired card, pick up", 38 "PIN tries exceeded, pick up", 201, 202, 206),
the specific reason wins: that is what the risk rules count. The raw code
stays on the transaction for whoever needs the capture flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from posgw.protocols.normalize.field_values import is_ascii_digits
from posgw.protocols.normalize.transaction import ResponseCategory

_C = ResponseCategory

RESPONSE_CODES_1987: Mapping[str, ResponseCategory] = MappingProxyType(
    {
        "00": _C.APPROVED,
        "01": _C.DECLINED,  # refer to card issuer
        "02": _C.DECLINED,  # refer to card issuer, special condition
        "03": _C.DECLINED,  # invalid merchant
        "04": _C.PICKUP,
        "05": _C.DO_NOT_HONOR,
        "06": _C.SYSTEM_ERROR,  # error
        "07": _C.PICKUP,  # pick up, special condition
        "08": _C.APPROVED,  # honour with identification
        "10": _C.PARTIAL_APPROVAL,
        "11": _C.APPROVED,  # approved (VIP)
        "12": _C.INVALID_TRANSACTION,
        "13": _C.INVALID_AMOUNT,
        "14": _C.INVALID_CARD,  # invalid card number
        "15": _C.INVALID_CARD,  # no such issuer
        "16": _C.APPROVED,  # approved, update track 3
        "19": _C.SYSTEM_ERROR,  # re-enter transaction
        "21": _C.DECLINED,  # no action taken
        "25": _C.ORIGINAL_NOT_FOUND,  # unable to locate record
        "30": _C.FORMAT_ERROR,
        "33": _C.EXPIRED_CARD,  # expired card, pick up
        "34": _C.SUSPECTED_FRAUD,  # suspected fraud, pick up
        "35": _C.PICKUP,  # card acceptor contact acquirer, pick up
        "36": _C.PICKUP,  # restricted card, pick up
        "37": _C.PICKUP,  # call acquirer security, pick up
        "38": _C.PIN_TRIES_EXCEEDED,  # PIN tries exceeded, pick up
        "39": _C.DECLINED,  # no credit account
        "40": _C.INVALID_TRANSACTION,  # function not supported
        "41": _C.PICKUP,  # lost card
        "43": _C.PICKUP,  # stolen card
        "51": _C.INSUFFICIENT_FUNDS,
        "52": _C.DECLINED,  # no cheque account
        "53": _C.DECLINED,  # no savings account
        "54": _C.EXPIRED_CARD,
        "55": _C.INCORRECT_PIN,
        "56": _C.INVALID_CARD,  # no card record
        "57": _C.INVALID_TRANSACTION,  # not permitted to cardholder
        "58": _C.NOT_PERMITTED_TO_TERMINAL,
        "59": _C.SUSPECTED_FRAUD,
        "61": _C.EXCEEDS_AMOUNT_LIMIT,
        "62": _C.DECLINED,  # restricted card
        "63": _C.DECLINED,  # security violation
        "65": _C.EXCEEDS_FREQUENCY_LIMIT,
        "68": _C.ISSUER_UNAVAILABLE,  # response received too late
        "75": _C.PIN_TRIES_EXCEEDED,
        "90": _C.ISSUER_UNAVAILABLE,  # cutoff in progress
        "91": _C.ISSUER_UNAVAILABLE,  # issuer or switch inoperative
        "92": _C.ISSUER_UNAVAILABLE,  # unable to route
        "93": _C.DECLINED,  # violation of law
        "94": _C.DUPLICATE_TRANSMISSION,
        "95": _C.RECONCILE_ERROR,
        "96": _C.SYSTEM_ERROR,
        "A0": _C.MAC_ERROR,
    }
)

ACTION_CODES_1993: Mapping[str, ResponseCategory] = MappingProxyType(
    {
        "000": _C.APPROVED,
        "001": _C.APPROVED,  # honour with identification
        "002": _C.PARTIAL_APPROVAL,
        "003": _C.APPROVED,  # VIP
        "004": _C.APPROVED,  # update track 3
        "005": _C.APPROVED,  # account type specified by issuer
        "006": _C.PARTIAL_APPROVAL,  # partial, account type specified by issuer
        "007": _C.APPROVED,  # update ICC
        "100": _C.DO_NOT_HONOR,
        "101": _C.EXPIRED_CARD,
        "102": _C.SUSPECTED_FRAUD,
        "106": _C.PIN_TRIES_EXCEEDED,
        "110": _C.INVALID_AMOUNT,
        "111": _C.INVALID_CARD,
        "115": _C.INVALID_TRANSACTION,  # requested function not supported
        "116": _C.INSUFFICIENT_FUNDS,
        "117": _C.INCORRECT_PIN,
        "118": _C.INVALID_CARD,  # no card record
        "119": _C.INVALID_TRANSACTION,  # not permitted to cardholder
        "120": _C.NOT_PERMITTED_TO_TERMINAL,
        "121": _C.EXCEEDS_AMOUNT_LIMIT,
        "123": _C.EXCEEDS_FREQUENCY_LIMIT,
        "125": _C.INVALID_CARD,  # card not effective
        "128": _C.SYSTEM_ERROR,  # PIN key synchronisation error
        "129": _C.SUSPECTED_FRAUD,  # suspected counterfeit card
        "200": _C.PICKUP,
        "201": _C.EXPIRED_CARD,  # expired card, pick up
        "202": _C.SUSPECTED_FRAUD,  # suspected fraud, pick up
        "206": _C.PIN_TRIES_EXCEEDED,  # PIN tries exceeded, pick up
        "210": _C.SUSPECTED_FRAUD,  # suspected counterfeit, pick up
        "400": _C.APPROVED,  # reversal accepted
        "500": _C.APPROVED,  # reconciled, in balance
        "501": _C.RECONCILE_ERROR,  # reconciled, out of balance
        "502": _C.RECONCILE_ERROR,  # amount not reconciled, totals provided
        "503": _C.RECONCILE_ERROR,  # totals not available
        "800": _C.APPROVED,  # network management accepted
        "900": _C.APPROVED,  # advice acknowledged, no financial liability
        "901": _C.APPROVED,  # advice acknowledged, financial liability
        "902": _C.INVALID_TRANSACTION,
        "903": _C.SYSTEM_ERROR,  # re-enter transaction
        "904": _C.FORMAT_ERROR,
        "905": _C.ISSUER_UNAVAILABLE,  # acquirer not supported by switch
        "906": _C.ISSUER_UNAVAILABLE,  # cutover in process
        "907": _C.ISSUER_UNAVAILABLE,  # card issuer or switch inoperative
        "908": _C.ISSUER_UNAVAILABLE,  # destination cannot be found for routing
        "909": _C.SYSTEM_ERROR,  # system malfunction
        "910": _C.ISSUER_UNAVAILABLE,  # card issuer signed off
        "911": _C.ISSUER_UNAVAILABLE,  # card issuer timed out
        "912": _C.ISSUER_UNAVAILABLE,  # card issuer unavailable
        "913": _C.DUPLICATE_TRANSMISSION,
        "914": _C.ORIGINAL_NOT_FOUND,  # cannot trace back to original
        "915": _C.RECONCILE_ERROR,  # reconciliation cutover or checkpoint error
        "916": _C.MAC_ERROR,  # MAC incorrect
        "917": _C.MAC_ERROR,  # MAC key synchronisation error
    }
)

#: The code written for each category when we build a response:
#: (1987 response code, 1993/2003 action code).
_PREFERRED_CODES: Mapping[ResponseCategory, tuple[str, str]] = MappingProxyType(
    {
        _C.APPROVED: ("00", "000"),
        _C.PARTIAL_APPROVAL: ("10", "002"),
        _C.DECLINED: ("05", "100"),
        _C.INSUFFICIENT_FUNDS: ("51", "116"),
        _C.INCORRECT_PIN: ("55", "117"),
        _C.PIN_TRIES_EXCEEDED: ("75", "106"),
        _C.EXCEEDS_AMOUNT_LIMIT: ("61", "121"),
        _C.EXCEEDS_FREQUENCY_LIMIT: ("65", "123"),
        _C.SUSPECTED_FRAUD: ("59", "102"),
        _C.EXPIRED_CARD: ("54", "101"),
        _C.INVALID_CARD: ("14", "111"),
        _C.INVALID_TRANSACTION: ("12", "902"),
        _C.INVALID_AMOUNT: ("13", "110"),
        _C.FORMAT_ERROR: ("30", "904"),
        _C.DUPLICATE_TRANSMISSION: ("94", "913"),
        _C.ISSUER_UNAVAILABLE: ("91", "907"),
        _C.SYSTEM_ERROR: ("96", "909"),
        _C.RECONCILE_ERROR: ("95", "915"),
        _C.MAC_ERROR: ("A0", "916"),
        _C.NOT_PERMITTED_TO_TERMINAL: ("58", "120"),
        _C.ORIGINAL_NOT_FOUND: ("25", "914"),
        _C.DO_NOT_HONOR: ("05", "100"),
        _C.PICKUP: ("04", "200"),
        # Nothing better can be said to a terminal than "system error".
        _C.UNKNOWN: ("96", "909"),
    }
)

#: ISO 8583:1993 action code ranges: 1xx denied, 2xx denied with pick-up.
_CATEGORY_BY_ACTION_RANGE: Mapping[str, ResponseCategory] = MappingProxyType(
    {"1": _C.DECLINED, "2": _C.PICKUP}
)

SUPPORTED_VERSIONS = frozenset({1987, 1993, 2003})


def category_for(code: str) -> ResponseCategory:
    """The category of a field 39 value; two characters read as 1987, three as 1993.

    Going by length rather than MTI version copes with 1993-based dialects
    that kept two-character codes. Unlisted 1993 codes fall back on the
    standard's ranges: 1xx denied, 2xx denied with pick-up.
    """
    code = code.strip().upper()
    if len(code) == 2:
        return RESPONSE_CODES_1987.get(code, _C.UNKNOWN)
    if len(code) == 3:
        known = ACTION_CODES_1993.get(code)
        if known is not None:
            return known
        if is_ascii_digits(code):
            return _CATEGORY_BY_ACTION_RANGE.get(code[0], _C.UNKNOWN)
    return _C.UNKNOWN


def response_code_for(category: ResponseCategory, version: int) -> str:
    """The field 39 value to send for `category` in an ISO 8583 `version` message."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"ISO 8583 version must be one of {sorted(SUPPORTED_VERSIONS)}")
    code_1987, code_1993 = _PREFERRED_CODES[category]
    return code_1987 if version == 1987 else code_1993
