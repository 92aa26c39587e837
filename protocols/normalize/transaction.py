"""The dialect-free view of one ISO 8583 message: `Transaction`.

Every later stage (dedupe, risk, ledger, outbox) works on this value and
never on raw fields. It carries the card only as `CardNumber`, which shows
itself masked; expiry, track data and the PIN block never get in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

from posgw.protocols.normalize.field_values import is_ascii_digits
from posgw.protocols.redact import mask_pan

#: ISO/IEC 7812-1 PANs are 8 to 19 digits.
PAN_MIN_DIGITS = 8
PAN_MAX_DIGITS = 19


class TxKind(StrEnum):
    """What the message asks for, whatever the dialect spells it as."""

    PURCHASE = "purchase"
    REFUND = "refund"
    VOID = "void"
    REVERSAL = "reversal"
    PREAUTH = "preauth"
    COMPLETION = "completion"
    BALANCE_INQUIRY = "balance_inquiry"
    BATCH_SETTLEMENT = "batch_settlement"
    SIGN_ON = "sign_on"
    ECHO = "echo"
    UNKNOWN = "unknown"


class EntryMode(StrEnum):
    """How the card data reached the terminal."""

    MAGSTRIPE = "magstripe"
    CHIP = "chip"
    CONTACTLESS = "contactless"
    MANUAL = "manual"
    FALLBACK = "fallback"
    UNKNOWN = "unknown"


class ResponseCategory(StrEnum):
    """The canonical outcome behind 1987 response and 1993 action codes."""

    APPROVED = "approved"
    PARTIAL_APPROVAL = "partial_approval"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INCORRECT_PIN = "incorrect_pin"
    PIN_TRIES_EXCEEDED = "pin_tries_exceeded"
    EXCEEDS_AMOUNT_LIMIT = "exceeds_amount_limit"
    EXCEEDS_FREQUENCY_LIMIT = "exceeds_frequency_limit"
    SUSPECTED_FRAUD = "suspected_fraud"
    EXPIRED_CARD = "expired_card"
    INVALID_CARD = "invalid_card"
    INVALID_TRANSACTION = "invalid_transaction"
    INVALID_AMOUNT = "invalid_amount"
    FORMAT_ERROR = "format_error"
    DUPLICATE_TRANSMISSION = "duplicate_transmission"
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    SYSTEM_ERROR = "system_error"
    RECONCILE_ERROR = "reconcile_error"
    MAC_ERROR = "mac_error"
    NOT_PERMITTED_TO_TERMINAL = "not_permitted_to_terminal"
    ORIGINAL_NOT_FOUND = "original_not_found"
    DO_NOT_HONOR = "do_not_honor"
    PICKUP = "pickup"
    UNKNOWN = "unknown"

    @property
    def is_approval(self) -> bool:
        """True for full and partial approvals: the funds are committed."""
        return self in (ResponseCategory.APPROVED, ResponseCategory.PARTIAL_APPROVAL)


class CardNumber:
    """A PAN that only ever shows itself masked (first 6, last 4).

    Deliberately not a dataclass: `dataclasses.asdict` and friends would
    copy the digits out into plain dicts. The clear digits leave only
    through `digits_for_tokenizing()`, which the gateway's keyed-token step
    calls; nothing else should.
    """

    __slots__ = ("_digits",)
    _digits: str

    def __init__(self, digits: str) -> None:
        if not is_pan_digits(digits):
            raise ValueError(f"a PAN is {PAN_MIN_DIGITS} to {PAN_MAX_DIGITS} ASCII digits")
        object.__setattr__(self, "_digits", digits)

    @property
    def masked(self) -> str:
        return mask_pan(self._digits)

    @property
    def last4(self) -> str:
        return self._digits[-4:]

    def digits_for_tokenizing(self) -> str:
        """The clear PAN, for building the keyed (HMAC) token only."""
        return self._digits

    def __repr__(self) -> str:
        return f"CardNumber({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CardNumber):
            return NotImplemented
        return self._digits == other._digits

    def __hash__(self) -> int:
        return hash((CardNumber, self._digits))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("CardNumber is immutable")

    def __copy__(self) -> CardNumber:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> CardNumber:
        return self

    def __reduce__(self) -> tuple[type[CardNumber], tuple[str]]:
        return (CardNumber, (self._digits,))


def is_pan_digits(text: object) -> bool:
    """True for 8 to 19 ASCII digits."""
    return (
        isinstance(text, str)
        and PAN_MIN_DIGITS <= len(text) <= PAN_MAX_DIGITS
        and is_ascii_digits(text)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """One message, normalized. Text fields hold the message's own strings.

    `version` is 1987, 1993 or 2003 (first MTI digit). `amount_minor` is in
    the minor unit of `currency` (ISO 4217 alpha, or the numeric code when
    the table does not know it). `response_code` is field 39 as sent and
    `response` its category; both are None on requests. `local_time` is
    field 12 and `local_date` field 13 (1987 only: in 1993 field 12 holds
    date and time and field 13 is a card date). `emv` maps the
    non-sensitive primitive EMV tags to upper-case hex. `original_*` come
    from field 90 (1987) or 56 (1993) and identify what a reversal undoes.
    `pos_condition_code` is field 25 (1987); `function_code` is field 24
    (1993/2003).
    """

    kind: TxKind
    mti: str
    version: int
    processing_code: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    card: CardNumber | None = None
    pan_masked: str | None = None
    stan: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    response_code: str | None = None
    response: ResponseCategory | None = None
    entry_mode: EntryMode = EntryMode.UNKNOWN
    pin_present: bool = False
    terminal_id: str | None = None
    merchant_id: str | None = None
    local_time: str | None = None
    local_date: str | None = None
    transmission_time: str | None = None
    pos_condition_code: str | None = None
    function_code: str | None = None
    # A plain dict typed read-only: MappingProxyType would break
    # dataclasses.asdict, copy.deepcopy and pickle on the whole Transaction.
    emv: Mapping[str, str] = field(default_factory=dict, hash=False)
    original_mti: str | None = None
    original_stan: str | None = None
    original_data: str | None = None
