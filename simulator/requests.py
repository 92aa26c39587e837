"""The terminal's requests, built for one profile's ISO 8583 dialect.

`RequestBuilder` makes 0200 purchase / refund / void, 0100 balance
inquiry, 0400 reversal, 0500 batch settlement and 0800 sign-on / echo. It
fills the fields a real 1987 terminal sends and silently leaves out those
the profile does not define (UnionPay has no 7, 70, 74-90: a reversal
there names its original in field 61 instead of 90).

Times come from the caller's Clock: 7 (MMDDhhmmss, UTC as ISO 8583
requires), 12 (hhmmss) and 13 (MMDD). The simulator keeps local time in
UTC so runs are reproducible.
"""

from __future__ import annotations

import hashlib

from posgw.drivers.clock import Clock
from posgw.protocols.iso8583.message import FieldValue, Message
from posgw.protocols.iso8583.spec import MessageSpec
from posgw.protocols.iso8583.tlv import TlvNode, build_tlv
from posgw.protocols.normalize.batch import BatchTotals
from posgw.simulator.cards import Card
from posgw.simulator.pinblock import TEST_PIN_KEY, encrypt_pin_block

#: STAN is n6 and 000000 is not used by most hosts: wrap 999999 -> 000001.
STAN_MAX = 999_999
#: POS entry mode (1987 field 22): PAN entry 05 = chip, 02 = magstripe; PIN entry 1 = yes.
ENTRY_CHIP_WITH_PIN = "051"
ENTRY_MAGSTRIPE_WITH_PIN = "021"
POS_CONDITION_NORMAL = "00"
DEFAULT_CURRENCY = "978"  # ISO 4217 numeric, EUR (2 minor digits)
DEFAULT_ACQUIRER_ID = "12345"
NETWORK_SIGN_ON = "001"
NETWORK_ECHO = "301"

PROCESSING_PURCHASE = "000000"
PROCESSING_VOID = "020000"
PROCESSING_REFUND = "200000"
PROCESSING_BALANCE = "310000"
PROCESSING_SETTLEMENT = "920000"


class StanCounter:
    """System trace audit numbers 000001..999999, then round again."""

    def __init__(self, start: int = 1) -> None:
        self._next = start

    def next(self) -> str:
        stan = self._next
        self._next = 1 if stan >= STAN_MAX else stan + 1
        return f"{stan:06d}"


class RequestBuilder:
    """Builds one terminal's requests for one dialect."""

    def __init__(self, spec: MessageSpec, *, terminal_id: str, merchant_id: str, clock: Clock,
                 currency: str = DEFAULT_CURRENCY, pin_key: bytes = TEST_PIN_KEY,
                 stans: StanCounter | None = None, batch_number: int = 1) -> None:
        self.spec = spec
        self.terminal_id = terminal_id
        self.merchant_id = merchant_id
        self.clock = clock
        self.currency = currency
        self.pin_key = pin_key
        self.stans = stans if stans is not None else StanCounter()
        self.batch_number = batch_number

    def purchase(self, card: Card, amount: int, *, pin: str | None = None) -> Message:
        return self._financial("0200", PROCESSING_PURCHASE, card, amount, pin)

    def refund(self, card: Card, amount: int, *, pin: str | None = None) -> Message:
        return self._financial("0200", PROCESSING_REFUND, card, amount, pin)

    def void(self, card: Card, amount: int, original_rrn: str | None = None) -> Message:
        message = self._financial("0200", PROCESSING_VOID, card, amount, None)
        if original_rrn:
            message.fields[37] = original_rrn  # the approval being voided
        return message

    def balance_inquiry(self, card: Card, *, pin: str | None = None) -> Message:
        return self._financial("0100", PROCESSING_BALANCE, card, 0, pin)

    def reversal(self, original: Message) -> Message:
        """0400 undoing `original`: its card and amount, original data in 90 (or 61)."""
        kept = {n: v for n, v in original.fields.items() if n in (2, 3, 4, 14, 22, 25, 41, 42, 49)}
        fields = {**self._header(), **kept}
        original_stan = original.text(11)
        fields[90] = (original.mti + original_stan + original.text(7, "0" * 10)
                      + DEFAULT_ACQUIRER_ID.zfill(11) + "0" * 11)
        fields[61] = f"{self.batch_number:06d}{original_stan}{original.text(13, '0000')}"
        return self._message("0400", fields)

    def settlement(self, totals: BatchTotals) -> Message:
        fields: dict[int, FieldValue] = {**self._header(), 3: PROCESSING_SETTLEMENT}
        fields.update(totals.fields())
        return self._message("0500", fields)

    def sign_on(self) -> Message:
        return self._message("0800", {**self._header(), 70: NETWORK_SIGN_ON})

    def echo(self) -> Message:
        return self._message("0800", {**self._header(), 70: NETWORK_ECHO})

    # --- parts ------------------------------------------------------------------

    def _header(self) -> dict[int, FieldValue]:
        now = self.clock.utc_now()
        return {
            7: now.strftime("%m%d%H%M%S"),
            11: self.stans.next(),
            12: now.strftime("%H%M%S"),
            13: now.strftime("%m%d"),
            41: self.terminal_id,
            42: self.merchant_id,
        }

    def _financial(self, mti: str, processing: str, card: Card, amount: int,
                   pin: str | None) -> Message:
        header = self._header()
        fields: dict[int, FieldValue] = {
            2: card.pan,
            3: processing,
            4: f"{amount:012d}",
            **header,
            14: card.expiry,
            22: ENTRY_CHIP_WITH_PIN,
            25: POS_CONDITION_NORMAL,
            35: card.track2,
            49: self.currency,
        }
        if processing != PROCESSING_VOID:  # a void needs no cardholder verification
            fields[52] = encrypt_pin_block(pin if pin is not None else card.pin, card.pan,
                                           self.pin_key)
        fields[55] = emv_data(amount, self.currency, processing[:2], str(header[11]),
                              self.clock.utc_now().strftime("%y%m%d"))
        return self._message(mti, fields)

    def _message(self, mti: str, fields: dict[int, FieldValue]) -> Message:
        defined = self.spec.fields
        if 90 in defined:
            fields.pop(61, None)  # 61 stands in for 90 only where 90 does not exist
        kept = {n: v for n, v in sorted(fields.items()) if n in defined}
        return Message(mti, kept)


def emv_data(amount: int, currency: str, tx_type: str, stan: str, yymmdd: str) -> bytes:
    """Field 55: the tags an acquirer expects from a chip purchase (EMV Book 3).

    The cryptogram (9F26) is a hash, not a real ARQC: no issuer checks it here.
    """
    unpredictable = hashlib.sha256(f"{stan}{yymmdd}".encode()).digest()[:4]
    cryptogram = hashlib.sha256(f"{amount}{stan}{yymmdd}".encode()).digest()[:8]
    nodes = [
        TlvNode.primitive("9F02", bytes.fromhex(f"{amount:012d}")),  # amount, authorised
        TlvNode.primitive("9F03", bytes(6)),  # amount, other
        TlvNode.primitive("5F2A", bytes.fromhex(currency.zfill(4))),  # currency
        TlvNode.primitive("9A", bytes.fromhex(yymmdd)),  # transaction date
        TlvNode.primitive("9C", bytes.fromhex(tx_type)),  # transaction type
        TlvNode.primitive("9F37", unpredictable),  # unpredictable number
        TlvNode.primitive("9F36", (int(stan) % 0x10000).to_bytes(2, "big")),  # ATC
        TlvNode.primitive("9F26", cryptogram),  # application cryptogram
        TlvNode.primitive("82", bytes.fromhex("1980")),  # AIP
        TlvNode.primitive("95", bytes(5)),  # TVR: all checks passed
    ]
    return build_tlv(nodes)
