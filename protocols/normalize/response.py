"""The response to a request: MTI + 10, the matching fields echoed, 37/38/39 set.

What is echoed, and why: a terminal matches a response to its request on
STAN (11), transmission and local date-time (7, 12, 13), terminal and
merchant ids (41, 42), acquirer id (32), RRN (37) and, in many dialects,
the batch and invoice numbers carried in the private fields 60 and 62. It
checks that processing code (3), amount (4) and currency (49) are what it
asked for, and expects NII / function code (24), POS condition or message
reason (25), network management code (70) and the original data elements
of a reversal (90; 56 in 1993) back. POS entry mode (22) is a request-only
field. Card data is never echoed: no PAN (2) unless a dialect asks for it
through `echo`, and never expiry (14), tracks (35, 45), PIN block (52) or
the request's chip data (55); a response field 55 (issuer authentication
data, scripts) comes only through `extra`.
"""

from __future__ import annotations

from collections.abc import Mapping

from posgw.protocols.iso8583.errors import EncodeError
from posgw.protocols.iso8583.message import FieldValue, Message
from posgw.protocols.normalize.field_values import is_ascii_digits
from posgw.protocols.normalize.response_codes import category_for

#: Never in a response, whatever the caller asks: expiry, tracks, PIN block.
NEVER_IN_RESPONSE = frozenset({14, 35, 45, 52})
#: Fields `echo` may not name: the above plus the request's chip data.
_NEVER_ECHOED = NEVER_IN_RESPONSE | {55}

ECHO_FIELDS_1987 = frozenset({3, 4, 7, 11, 12, 13, 24, 25, 32, 37, 41, 42, 49, 60, 62, 70, 90})
#: 1993/2003: field 13 is a card date there, and original data moved to 56.
ECHO_FIELDS_1993 = frozenset({3, 4, 7, 11, 12, 24, 25, 32, 37, 41, 42, 49, 56, 60, 62, 70})

_REQUEST_FUNCTIONS = "02"  # MTI third digit: request, advice
_RRN_MAX = 12  # field 37 an12
_AUTH_CODE_MAX = 6  # field 38 an6


def response_mti(request_mti: str) -> str:
    """0200 -> 0210, 0421 -> 0430, 1804 -> 1814: function + 1, repeat flag dropped.

    The fourth digit names the originator (0 acquirer, 2 issuer, 4 other)
    and, when odd, a repeat; the response answers the originator.
    """
    if (
        not isinstance(request_mti, str)
        or len(request_mti) != 4
        or not is_ascii_digits(request_mti)
        or request_mti[2] not in _REQUEST_FUNCTIONS
    ):
        raise EncodeError("mti", "only a 4-digit request or advice MTI has a response")
    origin = int(request_mti[3])
    return f"{request_mti[:2]}{int(request_mti[2]) + 1}{origin - origin % 2}"


def build_response(
    request: Message,
    *,
    response_code: str,
    auth_code: str | None = None,
    rrn: str | None = None,
    extra: Mapping[int, FieldValue] | None = None,
    echo: frozenset[int] | None = None,
) -> Message:
    """The response message for `request`; raises only EncodeError.

    `echo` replaces the default echoed set (ECHO_FIELDS_1987 or _1993, by
    the MTI's version digit). `extra` adds or overrides fields; 37, 38 and
    39 from the arguments win over both. `auth_code` is set only when
    `response_code` is an approval.
    """
    mti = response_mti(request.mti)
    _check_code(response_code, "39", 2, 3)
    echoed = echo if echo is not None else _default_echo(mti)
    forbidden = echoed & _NEVER_ECHOED
    if forbidden:
        raise EncodeError(str(min(forbidden)), "is never echoed into a response")
    fields: dict[int, FieldValue] = {
        number: value for number, value in request.fields.items() if number in echoed
    }
    for number, value in (extra or {}).items():
        if number in NEVER_IN_RESPONSE:
            raise EncodeError(str(number), "is never sent in a response")
        fields[number] = value
    if rrn is not None:
        _check_code(rrn, "37", 1, _RRN_MAX)
        fields[37] = rrn
    if auth_code is not None and category_for(response_code).is_approval:
        _check_code(auth_code, "38", 1, _AUTH_CODE_MAX)
        fields[38] = auth_code
    fields[39] = response_code
    return Message(mti, dict(sorted(fields.items())))


def _default_echo(mti: str) -> frozenset[int]:
    return ECHO_FIELDS_1987 if mti[0] == "0" else ECHO_FIELDS_1993


def _check_code(value: str, field: str, shortest: int, longest: int) -> None:
    if (
        not isinstance(value, str)
        or not shortest <= len(value) <= longest
        or not (value.isascii() and value.replace(" ", "").isalnum())
    ):
        raise EncodeError(field, f"must be {shortest} to {longest} letters or digits")
