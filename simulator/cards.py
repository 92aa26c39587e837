"""Test cards and the issuer rules the acquirer simulator applies to them.

Each `Card` carries what an issuer decides on: PIN, balance, a
per-transaction limit (over it: 61), a frequency limit (more than N
approvals within a window: 65) and a state (active, PIN-blocked: 75,
issuer down: 91). `CardBook.authorize` applies the rules in the order an
issuer host checks them, and is pure apart from the card it updates:
callers pass the time.

PIN rule (documented because scenarios assert it): each wrong PIN is
answered 55; the third wrong PIN in a row blocks the card, so every later
request, right PIN or not, gets 75. A right PIN before the third wrong one
resets the count. Hence "wrong PIN three times then right" gives
55, 55, 55, 75.

The PANs are the public scheme test numbers (Luhn-valid, never issued).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

#: Three wrong PINs block the card: the common issuer default (ISO 9564-1 practice).
MAX_WRONG_PIN_TRIES = 3
#: Window of the frequency limit; the risk desk's "again and again within minutes".
DEFAULT_FREQUENCY_WINDOW_S = 120.0


class CardState(StrEnum):
    ACTIVE = "active"
    PIN_BLOCKED = "pin-blocked"
    ISSUER_DOWN = "issuer-down"


class Code:
    """ISO 8583:1987 response codes the simulated issuer answers."""

    APPROVED = "00"
    INVALID_CARD = "14"
    INSUFFICIENT_FUNDS = "51"
    INCORRECT_PIN = "55"
    EXCEEDS_AMOUNT_LIMIT = "61"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    PIN_TRIES_EXCEEDED = "75"
    ISSUER_DOWN = "91"
    RECONCILE_ERROR = "95"


@dataclass(slots=True)
class Card:
    """One test card and its issuer-side state; amounts in minor units."""

    pan: str
    pin: str
    balance: int
    per_tx_limit: int | None = None
    frequency_limit: int | None = None  # approvals allowed within the window
    frequency_window_s: float = DEFAULT_FREQUENCY_WINDOW_S
    state: CardState = CardState.ACTIVE
    expiry: str = "3012"  # YYMM
    service_code: str = "201"  # chip card, normal authorization
    wrong_pin_tries: int = 0
    approvals_at: deque[float] = field(default_factory=deque)

    @property
    def track2(self) -> str:
        """Track 2 equivalent data: PAN = expiry service-code discretionary."""
        return f"{self.pan}={self.expiry}{self.service_code}0000000000"


@dataclass(frozen=True, slots=True)
class CardRequest:
    """What the issuer needs from one debit request."""

    pan: str
    amount: int
    pin_ok: bool | None  # None: no PIN block in the request
    now: float  # monotonic seconds, for the frequency window


class CardBook:
    """Cards by PAN, with the issuer's decision rules."""

    def __init__(self, cards: Iterable[Card]) -> None:
        self._cards = {card.pan: card for card in cards}

    def __contains__(self, pan: object) -> bool:
        return pan in self._cards

    def __iter__(self) -> Iterator[Card]:
        return iter(self._cards.values())

    def get(self, pan: str) -> Card | None:
        return self._cards.get(pan)

    def card(self, pan: str) -> Card:
        return self._cards[pan]

    def authorize(self, request: CardRequest) -> str:
        """Decide a purchase; on approval the balance is debited."""
        code = self._check(request, debit=True)
        if code == Code.APPROVED:
            card = self._cards[request.pan]
            card.balance -= request.amount
            card.approvals_at.append(request.now)
        return code

    def inquire(self, request: CardRequest) -> str:
        """Decide a balance inquiry: card state and PIN only."""
        return self._check(request, debit=False)

    def credit(self, pan: str, amount: int) -> str:
        """A refund, a void or a reversal puts money back on the card."""
        card = self._cards.get(pan)
        if card is None:
            return Code.INVALID_CARD
        if card.state is CardState.ISSUER_DOWN:
            return Code.ISSUER_DOWN
        card.balance += amount
        return Code.APPROVED

    def _check(self, request: CardRequest, *, debit: bool) -> str:
        card = self._cards.get(request.pan)
        if card is None:
            return Code.INVALID_CARD
        if card.state is CardState.ISSUER_DOWN:
            return Code.ISSUER_DOWN
        if card.state is CardState.PIN_BLOCKED:
            return Code.PIN_TRIES_EXCEEDED
        if request.pin_ok is False:
            return _wrong_pin(card)
        if request.pin_ok:
            card.wrong_pin_tries = 0
        if not debit:
            return Code.APPROVED
        return _limits(card, request)


def _wrong_pin(card: Card) -> str:
    card.wrong_pin_tries += 1
    if card.wrong_pin_tries >= MAX_WRONG_PIN_TRIES:
        card.state = CardState.PIN_BLOCKED
    return Code.INCORRECT_PIN


def _limits(card: Card, request: CardRequest) -> str:
    if card.per_tx_limit is not None and request.amount > card.per_tx_limit:
        return Code.EXCEEDS_AMOUNT_LIMIT
    if card.frequency_limit is not None:
        window_start = request.now - card.frequency_window_s
        while card.approvals_at and card.approvals_at[0] < window_start:
            card.approvals_at.popleft()
        if len(card.approvals_at) >= card.frequency_limit:
            return Code.EXCEEDS_FREQUENCY_LIMIT
    if request.amount > card.balance:
        return Code.INSUFFICIENT_FUNDS
    return Code.APPROVED


# --- the demo set --------------------------------------------------------------

VISA_OK = "4761739001010010"  # Visa test card: well funded
VISA_LOW = "4761739001010119"  # Visa test card: 4850.00 available
MASTERCARD_LIMITED = "5413330089010608"  # per-transaction limit 1000.00
MASTERCARD_FREQUENT = "5413330089020011"  # 3 approvals per 2 minutes
UNIONPAY_OK = "6212345678901232"  # UnionPay test card
UNIONPAY_BLOCKED = "6212345678901265"  # already PIN-blocked
VISA_ISSUER_DOWN = "4761739001010036"  # its issuer is unreachable
VISA_PIN_TRIES = "4761739001010051"  # for the wrong-PIN scenario


def demo_cards() -> list[Card]:
    """A fresh copy of the demo card set (issuer state is mutable)."""
    return [
        Card(VISA_OK, "1234", balance=10_000_000),
        Card(VISA_LOW, "4321", balance=485_000),
        Card(MASTERCARD_LIMITED, "1111", balance=10_000_000, per_tx_limit=100_000),
        Card(MASTERCARD_FREQUENT, "2222", balance=10_000_000, frequency_limit=3),
        Card(UNIONPAY_OK, "8888", balance=10_000_000),
        Card(UNIONPAY_BLOCKED, "9999", balance=10_000_000, state=CardState.PIN_BLOCKED),
        Card(VISA_ISSUER_DOWN, "5555", balance=10_000_000, state=CardState.ISSUER_DOWN),
        Card(VISA_PIN_TRIES, "2468", balance=10_000_000),
    ]
