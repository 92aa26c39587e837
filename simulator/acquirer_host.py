"""The acquirer host's decisions: one ISO 8583 request in, its response out.

Sans-IO apart from the Clock it reads for the frequency window; the TCP
server in `simulator.acquirer` wraps it. What it answers:

* 0200 purchase (3 = 00xxxx): PIN checked (field 52 decrypted under the
  test PIN key), then the card rules of `simulator.cards`: 00, 51, 55, 61,
  65, 75, 91 (14 for an unknown card).
* 0200 refund (20xxxx): money back on the card, 00.
* 0200 void (02xxxx): the approval named by RRN (field 37) undone, 00;
  12 when there is nothing to void.
* 0100 balance inquiry: state and PIN checked; the balance in field 54.
* 0400 reversal: the original (terminal + STAN from field 90, or UnionPay
  field 61) undone once; always 00, since a reversal must be acknowledged
  even when the original never arrived.
* 0500 settlement: the terminal's totals (74-89) against ours: 00 when
  equal, 95 otherwise; either way the batch is closed.
* 0800 sign-on / echo: 00.

A retransmitted request (same terminal, STAN and field 7) gets the stored
response again and is never a second charge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.protocols.iso8583.message import FieldValue, Message
from posgw.protocols.iso8583.spec import MessageSpec
from posgw.protocols.normalize import build_response
from posgw.protocols.normalize.batch import BatchTotals
from posgw.simulator.cards import Card, CardBook, CardRequest, Code
from posgw.simulator.pinblock import TEST_PIN_KEY, verify_pin

_TRACK2_SEPARATORS = ("=", "D")
INVALID_TRANSACTION = "12"


@dataclass(slots=True)
class Approval:
    """An approved debit or credit the host may later have to undo."""

    pan: str
    amount: int
    is_debit: bool
    undone: bool = False


class AcquirerHost:
    """Issuer rules, reversals, settlement and duplicate detection for one host."""

    def __init__(self, spec: MessageSpec, cards: Iterable[Card] | CardBook, *,
                 clock: Clock = SYSTEM_CLOCK, pin_key: bytes = TEST_PIN_KEY) -> None:
        self.spec = spec
        self.cards = cards if isinstance(cards, CardBook) else CardBook(cards)
        self.clock = clock
        self.pin_key = pin_key
        self._sequence = 0
        self._responses: dict[tuple[str, str, str, str], Message] = {}
        self._by_stan: dict[tuple[str, str], Approval] = {}
        self._by_rrn: dict[str, Approval] = {}
        self._totals: dict[str, BatchTotals] = {}

    def totals(self, terminal_id: str) -> BatchTotals:
        return self._totals.get(terminal_id, BatchTotals())

    def handle(self, request: Message) -> Message | None:
        """The response to `request`, or None for a message that is not a request."""
        if request.mti[2] not in "02":
            return None
        sent_at = request.text(7) or request.text(13) + request.text(12)  # UnionPay has no 7
        key = (request.mti, request.text(41), request.text(11), sent_at)
        if key in self._responses:
            return self._responses[key]
        response = self._dispatch(request)
        self._responses[key] = response
        return response

    def _dispatch(self, request: Message) -> Message:
        match request.mti[1]:
            case "1" | "2":
                return self._financial(request)
            case "4":
                return self._reversal(request)
            case "5":
                return self._settlement(request)
            case "8":
                return self._respond(request, Code.APPROVED)
        return self._respond(request, INVALID_TRANSACTION)

    # --- financial ---------------------------------------------------------------

    def _financial(self, request: Message) -> Message:
        pan = pan_of(request)
        amount = int(request.text(4, "0") or 0)
        kind = request.text(3, "000000")[:2]
        if kind == "30" or kind == "31":
            return self._inquiry(request, pan)
        if kind == "20":
            return self._approve_credit(request, pan, amount)
        if kind == "02":
            return self._void(request)
        card_request = CardRequest(pan, amount, self._pin_ok(request, pan), self.clock.monotonic())
        code = self.cards.authorize(card_request)
        if code != Code.APPROVED:
            return self._respond(request, code)
        return self._record(request, Approval(pan, amount, is_debit=True))

    def _inquiry(self, request: Message, pan: str) -> Message:
        card_request = CardRequest(pan, 0, self._pin_ok(request, pan), self.clock.monotonic())
        code = self.cards.inquire(card_request)
        if code != Code.APPROVED:
            return self._respond(request, code)
        terminal = request.text(41)
        self._totals[terminal] = _add(self.totals(terminal), inquiries=1)
        balance = self.cards.card(pan).balance
        currency = request.text(49, "000")
        # Field 54: account type 00, amount type 02 (available), currency, C, n12.
        extra: dict[int, FieldValue] = {54: f"0002{currency}C{balance:012d}"}
        return self._respond(request, Code.APPROVED, extra, approved=True)

    def _approve_credit(self, request: Message, pan: str, amount: int) -> Message:
        code = self.cards.credit(pan, amount)
        if code != Code.APPROVED:
            return self._respond(request, code)
        return self._record(request, Approval(pan, amount, is_debit=False))

    def _void(self, request: Message) -> Message:
        original = self._by_rrn.get(request.text(37))
        if original is None or original.undone or not original.is_debit:
            return self._respond(request, INVALID_TRANSACTION)
        self._undo(request.text(41), original)
        return self._respond(request, Code.APPROVED, approved=True)

    def _record(self, request: Message, approval: Approval) -> Message:
        terminal = request.text(41)
        response = self._respond(request, Code.APPROVED, approved=True)
        self._by_stan[(terminal, request.text(11))] = approval
        self._by_rrn[response.text(37)] = approval
        totals = self.totals(terminal)
        self._totals[terminal] = (
            _add(totals, debits=1, debits_amount=approval.amount) if approval.is_debit
            else _add(totals, credits=1, credits_amount=approval.amount)
        )
        return response

    def _undo(self, terminal: str, approval: Approval) -> None:
        approval.undone = True
        totals = self.totals(terminal)
        if approval.is_debit:
            self.cards.credit(approval.pan, approval.amount)
            totals = _add(totals, debit_reversals=1, debit_reversals_amount=approval.amount)
        else:
            self.cards.card(approval.pan).balance -= approval.amount
            totals = _add(totals, credit_reversals=1, credit_reversals_amount=approval.amount)
        self._totals[terminal] = totals

    # --- reversal, settlement ------------------------------------------------------

    def _reversal(self, request: Message) -> Message:
        terminal = request.text(41)
        original = self._by_stan.get((terminal, original_stan(request)))
        if original is not None and not original.undone:
            self._undo(terminal, original)
        return self._respond(request, Code.APPROVED)

    def _settlement(self, request: Message) -> Message:
        terminal = request.text(41)
        theirs = BatchTotals.from_fields(request) or BatchTotals()
        ours = self._totals.pop(terminal, BatchTotals())
        code = Code.APPROVED if theirs == ours else Code.RECONCILE_ERROR
        return self._respond(request, code)

    # --- parts -----------------------------------------------------------------------

    def _pin_ok(self, request: Message, pan: str) -> bool | None:
        block = request.binary(52)
        card = self.cards.get(pan)
        if block is None or card is None:
            return None
        return verify_pin(block, pan, card.pin, self.pin_key)

    def _respond(self, request: Message, code: str, extra: dict[int, FieldValue] | None = None,
                 *, approved: bool = False) -> Message:
        self._sequence += 1
        rrn = f"{self._sequence:012d}" if 37 in self.spec.fields else None
        auth = f"{self._sequence % 1_000_000:06d}" if approved else None
        kept = {n: v for n, v in (extra or {}).items() if n in self.spec.fields}
        return build_response(request, response_code=code, auth_code=auth, rrn=rrn, extra=kept)


def pan_of(request: Message) -> str:
    """The PAN from field 2, or from track 2 (field 35) when 2 is absent."""
    pan = request.text(2)
    if pan:
        return pan
    track = request.text(35)
    for separator in _TRACK2_SEPARATORS:
        if separator in track:
            return track.split(separator, 1)[0].lstrip(";")
    return ""


def original_stan(reversal: Message) -> str:
    """The original STAN: 1987 field 90 positions 5-10, or UnionPay 61.2."""
    data = reversal.text(90)
    if len(data) >= 10:
        return data[4:10]
    data = reversal.text(61)
    return data[6:12] if len(data) >= 12 else ""


def _add(totals: BatchTotals, **increments: int) -> BatchTotals:
    return replace(totals, **{k: getattr(totals, k) + v for k, v in increments.items()})
