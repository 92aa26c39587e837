"""A card terminal on one line: it sends requests and awaits their responses.

`TerminalSimulator` frames its messages with the profile's link over any
`Transport` (pty serial, emulated USB, TCP) through a `FramedChannel`. Like
a real terminal it matches a response on MTI and STAN, ignores stale ones,
and when a financial request gets no answer in time it sends a 0400
reversal (0401 repeats until one is answered) and then repeats the request
under a new STAN. It never re-sends a delivered request on its own.

Every exchange is recorded as an `Exchange`: kind, STAN, masked PAN,
amount, response code (None: no answer), latency, RRN and auth code.

With a `mac_key` (and a profile with `[mac]`) every request carries a MAC
and every response's MAC is checked: `Exchange.response_mac` says what the
check found ("valid", "missing", "mismatch", ...), `bad_response_macs`
counts the responses that did not verify.

Two clocks: `clock` stamps the messages (fields 7, 12, 13) and may be
virtual; link timers and latencies always run on the system clock, because
the peer is real.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from types import TracebackType

from posgw.drivers.base import LinkClosed, Transport
from posgw.drivers.channel import FramedChannel
from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.protocols.framing import Envelope, Event, Tpdu, build_link
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import Iso8583Error
from posgw.protocols.iso8583.message import Message
from posgw.protocols.mac import MacCheck, MacKey, check_message, sign_message
from posgw.protocols.normalize import response_mti
from posgw.protocols.normalize.batch import BatchTotals
from posgw.protocols.profile import Profile
from posgw.protocols.redact import mask_pan
from posgw.simulator.cards import Card, Code
from posgw.simulator.requests import RequestBuilder, StanCounter

#: Terminals wait 60-180 s for an authorisation (DESIGN.md); 60 s is the floor.
DEFAULT_RESPONSE_TIMEOUT_S = 60.0
#: A reversal is repeated (0401) until answered, at most this many times.
REVERSAL_ATTEMPTS = 3
NO_RESPONSE = "no response"
LINK_CLOSED = "link closed"
NOT_DELIVERED = "not delivered"
#: UnionPay-style envelope: TPDU 60 0003 0000 and a 6-byte application header.
DEFAULT_NII = 0x0003
DEFAULT_HEADER = bytes.fromhex("603100000000")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and what came back; never a clear PAN."""

    kind: str
    stan: str
    pan_masked: str
    amount: int
    response_code: str | None
    latency_s: float
    note: str = ""
    rrn: str = ""
    auth_code: str = ""
    response_mac: str = ""  # the response MAC check; "" when the terminal has no MAC key

    @property
    def approved(self) -> bool:
        return self.response_code == Code.APPROVED


class TerminalSimulator:
    """`async with TerminalSimulator(...) as terminal: await terminal.purchase(pan, 1000)`."""

    def __init__(self, profile: Profile, transport: Transport, terminal_id: str,
                 merchant_id: str, cards: Iterable[Card], clock: Clock = SYSTEM_CLOCK, *,
                 response_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S,
                 max_repeats: int = 1, stans: StanCounter | None = None,
                 mac_key: MacKey | None = None) -> None:
        self.profile = profile
        self.mac_key = mac_key if profile.mac is not None else None
        self.bad_response_macs = 0
        self.codec = Codec(profile.iso8583)
        self.cards = {card.pan: card for card in cards}
        self.builder = RequestBuilder(profile.iso8583, terminal_id=terminal_id,
                                      merchant_id=merchant_id, clock=clock, stans=stans)
        self.response_timeout_s = response_timeout_s
        self.max_repeats = max_repeats
        self.envelope = default_envelope(profile)
        self.exchanges: list[Exchange] = []
        self.totals = BatchTotals()
        self.link_events: Counter[str] = Counter()
        self.stale_responses = 0
        self.last_request: Message | None = None
        self._transport = transport
        self._lose_responses = 0
        self._stack = AsyncExitStack()
        self._channel: FramedChannel | None = None

    async def __aenter__(self) -> TerminalSimulator:
        await self._open(self._transport)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stack.aclose()

    async def attach(self, transport: Transport) -> None:
        """Continue on a new line (after a cable pull or a replug)."""
        await self._stack.aclose()
        self._stack = AsyncExitStack()
        await self._open(transport)

    def lose_next_responses(self, count: int = 1) -> None:
        """Discard the next `count` matching responses, as if lost on the way back."""
        self._lose_responses += count

    # --- transactions ------------------------------------------------------------

    async def purchase(self, pan: str, amount: int, *, pin: str | None = None) -> Exchange:
        card = self.cards[pan]
        build = lambda: self.builder.purchase(card, amount, pin=pin)  # noqa: E731
        return await self._transact("purchase", build, pan, amount)

    async def refund(self, pan: str, amount: int, *, pin: str | None = None) -> Exchange:
        card = self.cards[pan]
        build = lambda: self.builder.refund(card, amount, pin=pin)  # noqa: E731
        return await self._transact("refund", build, pan, amount)

    async def void(self, pan: str, amount: int, rrn: str) -> Exchange:
        card = self.cards[pan]
        return await self._transact("void", lambda: self.builder.void(card, amount, rrn), pan,
                                    amount)

    async def balance_inquiry(self, pan: str, *, pin: str | None = None) -> Exchange:
        card = self.cards[pan]
        return await self._transact("balance_inquiry",
                                    lambda: self.builder.balance_inquiry(card, pin=pin), pan, 0)

    async def settle(self) -> Exchange:
        exchange = await self._transact("settlement", lambda: self.builder.settlement(self.totals),
                                        "", self.totals.debits_amount)
        if exchange.response_code is not None:
            self.totals = BatchTotals()  # the host closed the batch either way
        return exchange

    async def sign_on(self) -> Exchange:
        return await self._transact("sign_on", self.builder.sign_on, "", 0)

    async def echo(self) -> Exchange:
        return await self._transact("echo", self.builder.echo, "", 0)

    async def send_again(self) -> Exchange:
        """Retransmit the last request unchanged: same STAN, same field 7."""
        assert self.last_request is not None, "nothing sent yet"
        request = self.last_request
        return await self._exchange("retransmit", request, request.text(2),
                                    int(request.text(4, "0") or 0))

    # --- the exchange ------------------------------------------------------------------

    async def _transact(self, kind: str, build: Callable[[], Message], pan: str,
                        amount: int) -> Exchange:
        exchange = await self._exchange(kind, build(), pan, amount)
        repeats = 0
        while exchange.note == NO_RESPONSE and repeats < self.max_repeats:
            assert self.last_request is not None
            if self.last_request.mti == "0200":
                await self._reverse(self.last_request)
            repeats += 1
            exchange = await self._exchange(f"{kind} (repeat)", build(), pan, amount)
        if exchange.approved:
            self._count(kind, amount)
        return exchange

    async def _reverse(self, original: Message) -> None:
        reversal = self.builder.reversal(original)
        for _ in range(REVERSAL_ATTEMPTS):
            exchange = await self._exchange("reversal", reversal, original.text(2),
                                            int(original.text(4, "0") or 0))
            if exchange.response_code is not None:
                return
            reversal = Message("0401", reversal.fields)  # repeat of the same reversal

    async def _exchange(self, kind: str, request: Message, pan: str, amount: int) -> Exchange:
        assert self._channel is not None, "use `async with` first"
        self.last_request = request
        started = SYSTEM_CLOCK.monotonic()
        record = Exchange(kind, request.text(11), mask_pan(pan) if pan else "", amount, None, 0.0)
        try:
            if not await self._channel.send(self._encode(request), self.envelope):
                return self._keep(replace(record, note=NOT_DELIVERED), started)
            response, raw = await self._await_response(request)
        except LinkClosed:
            return self._keep(replace(record, note=LINK_CLOSED), started)
        except TimeoutError:
            return self._keep(replace(record, note=NO_RESPONSE), started)
        answered = replace(record, response_code=response.text(39), rrn=response.text(37),
                           auth_code=response.text(38),
                           response_mac=self._check_response_mac(raw, response))
        return self._keep(answered, started)

    def _encode(self, request: Message) -> bytes:
        if self.mac_key is None or self.profile.mac is None:
            return self.codec.encode(request)
        return sign_message(self.codec, request, self.profile.mac, self.mac_key)

    def _check_response_mac(self, raw: bytes, response: Message) -> str:
        if self.mac_key is None or self.profile.mac is None:
            return ""
        check = check_message(raw, response, self.profile.mac, self.mac_key)
        if check is not MacCheck.VALID:
            self.bad_response_macs += 1
        return check.value

    async def _await_response(self, request: Message) -> tuple[Message, bytes]:
        assert self._channel is not None
        expected = (response_mti(request.mti), request.text(11))
        async with asyncio.timeout(self.response_timeout_s):
            while True:
                received = await self._channel.receive()
                try:
                    response = self.codec.decode(received.message)
                except Iso8583Error:
                    self.link_events["undecodable"] += 1
                    continue
                if (response.mti, response.text(11)) != expected:
                    self.stale_responses += 1
                    continue
                if self._lose_responses > 0:
                    self._lose_responses -= 1
                    continue
                return response, received.message

    def _keep(self, exchange: Exchange, started: float) -> Exchange:
        exchange = replace(exchange, latency_s=SYSTEM_CLOCK.monotonic() - started)
        self.exchanges.append(exchange)
        return exchange

    def _count(self, kind: str, amount: int) -> None:
        t = self.totals
        if kind == "purchase":
            self.totals = replace(t, debits=t.debits + 1, debits_amount=t.debits_amount + amount)
        elif kind == "refund":
            self.totals = replace(t, credits=t.credits + 1,
                                  credits_amount=t.credits_amount + amount)
        elif kind == "void":
            self.totals = replace(t, debit_reversals=t.debit_reversals + 1,
                                  debit_reversals_amount=t.debit_reversals_amount + amount)
        elif kind == "balance_inquiry":
            self.totals = replace(t, inquiries=t.inquiries + 1)

    def _on_event(self, event: Event) -> None:
        self.link_events[type(event).__name__] += 1

    async def _open(self, transport: Transport) -> None:
        link = build_link(self.profile.framing)
        channel = FramedChannel(transport, link, on_event=self._on_event)
        self._channel = await self._stack.enter_async_context(channel)


def default_envelope(profile: Profile) -> Envelope | None:
    """The TPDU and header a terminal of this profile puts before each message."""
    framing = profile.framing
    if not framing.tpdu and framing.header_bytes == 0:
        return None
    tpdu = Tpdu(destination=DEFAULT_NII, source=0) if framing.tpdu else None
    header = DEFAULT_HEADER[: framing.header_bytes].ljust(framing.header_bytes, b"\0")
    return Envelope(tpdu, header)
