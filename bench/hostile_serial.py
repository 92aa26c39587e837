"""The flooded serial line of bench/hostile.py: a peer that accounts for every reply.

It runs the gateway's own framer (a "mirror") over the bytes it sends, so
it knows each frame the gateway will see and the reply that frame is owed:
a NAK for a bad check or an over-long frame, an ACK for an ETB block, and
for a complete message an ACK (then a 30 when the oracle owes one) or a NAK
while 16 earlier messages still wait for the session ("busy"). The
gateway's ACKs and NAKs come back in the order of its frames, so the
reader matches them one by one.

Its line noise leaves out ETX, ETB, ACK and NAK: those would close a frame,
or steer the gateway's handshake, at a moment set by the gateway's
inter-byte timer rather than by the bytes, and the reply could no longer be
told in advance (tests/security sends them, and checks bounds instead of
exact counts).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from posgw.drivers.base import Transport
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.protocols.framing import (
    BlockAccepted,
    ControlReceived,
    FrameReceived,
    FrameRejected,
    StxEtxFramer,
    build_framer,
    build_link,
    control,
)
from posgw.protocols.framing.control import ACK, ETB, ETX, NAK
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.normalize import response_mti
from posgw.simulator.requests import RequestBuilder, StanCounter
from tests.security.test_hostile_input import (
    MAX_FRAME,
    MERCHANT,
    SERIAL_MIX,
    SERIAL_PROFILE,
    HostileMessages,
)

FLOODED = "S0000001"
ANSWER_TIMEOUT_S = 20.0
PROBE_FIRST_STAN = 900_001  # far from the flood's STANs (000001 up)
# A probe refused (busy) is gone: send another after the ACK timeout, as a terminal would.
PROBE_RESEND_S = build_link(SERIAL_PROFILE.framing).config.ack_timeout
# The same answer again, right after the first and (nearly) the gateway's
# ACK timeout later, is a link retransmission, not a second answer: while
# the flood keeps its queue full, the session sends its next answer as soon
# as the last is ACKed, well within that time.
RESENT_AFTER_S = 0.9 * PROBE_RESEND_S
NOISE = bytes(sorted(set(range(256)) - {ETX, ETB, ACK, NAK}))


@dataclass(frozen=True, slots=True)
class Owed:
    """What the gateway owes one frame it will see: "nak", "ack" or "message"."""

    reply: str
    answer_owed: bool = False  # a message: a 30, once taken
    probe: bool = False


@dataclass(slots=True)
class SerialAccount:
    chunks: Counter[str] = field(default_factory=Counter)
    bad_frames: int = 0  # bad check or over-long: a NAK each
    naks_for_bad: int = 0
    blocks: int = 0  # ETB blocks before a closing block: an ACK each
    acks_for_blocks: int = 0
    messages: int = 0  # complete frames with a good check
    taken: int = 0  # ... ACKed: the session got them
    refused_busy: int = 0  # ... NAKed: 16 earlier ones still waited
    answers_owed: int = 0  # taken messages the oracle owes a 30
    answers: Counter[str] = field(default_factory=Counter)  # flood answers by code
    resent: int = 0  # answers the gateway sent again: no ACK within its ACK timeout
    unaccounted: int = 0  # a reply other than the one its frame is owed
    probes: int = 0


class AccountedSerialPeer:
    """The flooding end of the cable; see the module docstring.

    One task writes (chunks, and ACKs for the gateway's answers, only while
    the gateway's framer is between frames); the reader matches every ACK
    and NAK against what its frame is owed, in order.
    """

    def __init__(self, transport: Transport, seed: int) -> None:
        self.transport = transport
        self.messages = HostileMessages(seed, SERIAL_PROFILE, line_names_terminal=True)
        self.rng = self.messages.rng
        framer, mirror = build_framer(SERIAL_PROFILE.framing), build_framer(SERIAL_PROFILE.framing)
        assert isinstance(framer, StxEtxFramer)
        self.framer, self.mirror = framer, mirror  # mirror: the gateway's framer, fed our bytes
        self.codec = Codec(SERIAL_PROFILE.iso8583)
        self.owed: deque[Owed] = deque()
        self.account = SerialAccount()
        self.acks_owed = 0
        self.last_answer = (b"", 0.0)  # bytes and arrival of the last flood answer
        self.answered = asyncio.Event()
        self.heard: set[tuple[str, str]] = set()
        self.builder = RequestBuilder(SERIAL_PROFILE.iso8583, terminal_id=FLOODED,
                                      merchant_id=MERCHANT, clock=SYSTEM_CLOCK,
                                      stans=StanCounter(PROBE_FIRST_STAN))

    async def flood(self, chunks: int) -> None:
        for _ in range(chunks):
            await self._write(self._next_chunk())
            await self.ack_all()

    async def open_line(self) -> None:
        """Probe until the gateway has the line open. pyserial flushes the input
        when it opens a port, so what was written before gets no reply: forget it."""
        await self.probe()
        self.owed.clear()

    async def probe(self) -> None:
        """Echo tests until the latest is answered: every earlier byte is handled."""
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                while not await self._echo_answered():
                    pass
        except TimeoutError:
            raise SystemExit("the gateway answered no echo test on the flooded line") from None

    async def read(self) -> None:
        framer = build_framer(SERIAL_PROFILE.framing)
        while True:
            for event in framer.feed(await self.transport.read()):
                match event:
                    case ControlReceived(code=code):
                        self._reply(code)
                    case FrameReceived(payload=payload):
                        self._answer(payload)
                        self.acks_owed += 1
                        self.answered.set()

    def _answer(self, payload: bytes) -> None:
        response, now = self.codec.decode(payload), time.monotonic()
        self.heard.add((response.mti, response.text(11)))
        previous, self.last_answer = self.last_answer, (payload, now)
        if response.mti == "0810":
            return  # a probe's
        if previous[0] == payload and now - previous[1] >= RESENT_AFTER_S:
            self.account.resent += 1  # our ACK reached the gateway after its ACK timeout
        else:
            self.account.answers[response.text(39)] += 1

    async def ack_all(self) -> None:
        if self.mirror.in_frame:
            return  # an ACK now would be data inside the gateway's partial frame
        while self.acks_owed:
            self.acks_owed -= 1
            await self.transport.write(bytes((ACK,)))

    def _reply(self, code: int) -> None:
        account, owed = self.account, self.owed.popleft() if self.owed else None
        match owed, code:
            case Owed(reply="nak"), control.NAK:
                account.naks_for_bad += 1
            case Owed(reply="ack"), control.ACK:
                account.acks_for_blocks += 1
            case Owed(reply="message", probe=True), control.ACK | control.NAK:
                pass  # a probe: answered or sent again, see probe()
            case Owed(reply="message"), control.ACK:
                account.taken += 1
                account.answers_owed += owed.answer_owed
            case Owed(reply="message"), control.NAK:
                account.refused_busy += 1
            case _:
                account.unaccounted += 1

    async def _write(self, chunk: bytes, *, probe: bool = False) -> None:
        for event in self.mirror.feed(chunk):
            match event:
                case FrameRejected():
                    self.account.bad_frames += 1
                    self.owed.append(Owed("nak"))
                case BlockAccepted():
                    self.account.blocks += 1
                    self.owed.append(Owed("ack"))
                case FrameReceived() if probe:
                    self.owed.append(Owed("message", probe=True))
                case FrameReceived(payload=payload):
                    self.account.messages += 1
                    self.owed.append(Owed("message", bool(self.messages.answer_owed(payload))))
        await self.transport.write(chunk)

    async def _echo_answered(self) -> bool:
        request = self.builder.echo()
        awaited = (response_mti(request.mti), request.text(11))
        self.account.probes += 1
        await self._write(self.framer.frame(self.codec.encode(request)), probe=True)
        try:
            async with asyncio.timeout(PROBE_RESEND_S):  # refused (busy): send another
                while awaited not in self.heard:
                    await self.ack_all()
                    await self.answered.wait()
                    self.answered.clear()
        except TimeoutError:
            return False
        await self.ack_all()
        return True

    def _next_chunk(self) -> bytes:
        [kind] = self.rng.choices(list(SERIAL_MIX), weights=list(SERIAL_MIX.values()))
        self.account.chunks[kind] += 1
        match kind:
            case "garbage":
                return bytes(self.rng.choice(NOISE) for _ in range(self.rng.randrange(1, 64)))
            case "bad_check":
                frame = bytearray(self.framer.frame(self.messages.valid()))
                frame[-1] ^= self.rng.randrange(1, 256)
                return bytes(frame)
            case "no_etx":
                return self.framer.frame(self._payload())[:-2]
            case "etb_blocks":
                return b"".join(self.framer.frame_blocks(self._payload(),
                                                         self.rng.randrange(16, 128)))
            case "good_check":
                return self.framer.frame(self._payload())
        return self.framer.frame(b"9" * MAX_FRAME)[:-2] + b"9\x03\x00"  # oversize

    def _payload(self) -> bytes:
        return self.messages.next(accept=lambda data: not set(data) & {0x02, 0x03, 0x17}).payload
