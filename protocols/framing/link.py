"""The link: a framer plus envelope split, ACK/NAK handshake and timers.

Receiving: a good frame becomes `MessageReceived(message, envelope)`, preceded
by `SendAck` when the profile handshakes; a frame that fails its length or
check becomes `FrameRejected`, preceded by `SendNak`. A frame that passes its
check but is too short for its TPDU/header is ACKed (the link did its job;
NAKing would only make the peer resend the same bytes) and reported as
`FrameRejected`. If our ACK is lost the peer resends and the message arrives
again: deduplication (terminal, STAN, date) is the gateway's job. While the
owner sets `busy` (it cannot take another message yet), a good frame is
NAKed and reported as `FrameRejected` instead: a NAK asks for the frame
again, which is the only refusal an ACK/NAK line has (for a multi-block
message, its closing block: the accepted blocks are kept for it). Without a handshake
there is no way to refuse, and frames pass.

Sending: `send` returns `Write`s. With a handshake the link then waits for
ACK; a NAK or the ACK timeout triggers `Retransmit`, at most
`max_retransmits` times, then `DeliveryFailed`; an ACK gives `Delivered`. In
"enq-ack-nak" mode the link first sends ENQ and waits for its ACK, and sends
EOT after the exchange. Once a message is delivered the link forgets it: it
never re-sends a request on its own, whatever happens next. If the answer
does not come (`expect_response` then `ResponseTimeout`), the application
queries or reverses the reference instead (Verifone PosLink practice).

Timers: the caller passes `now` (monotonic seconds) to every call, calls
`poll(now)` when `next_deadline()` is reached, and the link fires:

* inter-byte timeout: a frame whose bytes stop arriving is dropped
  (`PartialFrameDropped`), without NAK: the sender's ACK timeout resends it;
* ACK timeout: retransmit or fail, as above;
* response timeout: `ResponseTimeout`, once per `expect_response`;
* accepted ETB blocks whose closing block never comes are dropped once the
  sender's whole retry window (ACK timeout x (max_retransmits + 1)) is over.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum, StrEnum, auto

from posgw.protocols.framing.control import ACK, ENQ, EOT, NAK
from posgw.protocols.framing.envelope import TPDU_SIZE, Envelope, Tpdu, join_envelope
from posgw.protocols.framing.errors import FramingError
from posgw.protocols.framing.events import (
    BlockAccepted,
    ControlReceived,
    Delivered,
    DeliveryFailed,
    Event,
    FrameReceived,
    FrameRejected,
    MessageReceived,
    PartialFrameDropped,
    ResponseTimeout,
    Retransmit,
    SendAck,
    SendNak,
    Write,
)
from posgw.protocols.framing.interfaces import Framer, HoldsBlocks


class Handshake(StrEnum):
    """How the link confirms frames."""

    NONE = "none"  # fire and forget (length-prefixed TCP)
    ACK_NAK = "ack-nak"  # each frame answered by ACK or NAK
    ENQ_ACK_NAK = "enq-ack-nak"  # ENQ / ACK before the frame, EOT after it


# At most 3 link retransmissions: common ECR practice (Nexi ECR17, ZVT).
DEFAULT_MAX_RETRANSMITS = 3
# Inter-byte 200 ms: upper end of the 100-200 ms ECR serial practice.
DEFAULT_INTER_BYTE_TIMEOUT = 0.2
# ACK 3 s: upper end of the 1.5-3 s ECR practice.
DEFAULT_ACK_TIMEOUT = 3.0
# Response 60 s: lower end of the 60-180 s terminals allow for authorisation.
DEFAULT_RESPONSE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Handshake, envelope layout and timers (seconds) of one link."""

    handshake: Handshake = Handshake.NONE
    has_tpdu: bool = False
    header_len: int = 0
    max_retransmits: int = DEFAULT_MAX_RETRANSMITS
    # None: no inter-byte timeout (a reliable stream, where a partial frame
    # is a slow sender, not line noise, and dropping it would lose sync).
    inter_byte_timeout: float | None = DEFAULT_INTER_BYTE_TIMEOUT
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT


class _Phase(Enum):
    ENQ = auto()  # waiting for the ACK that grants the line
    FRAME = auto()  # waiting for the ACK of the frame


@dataclass(slots=True)
class _Pending:
    """The one outgoing frame awaiting its ACK."""

    frame: bytes
    phase: _Phase
    deadline: float
    retransmits: int = 0


class Link:
    """Sans-IO message link over any `Framer`; see the module docstring."""

    def __init__(self, framer: Framer, config: LinkConfig | None = None) -> None:
        self.framer = framer
        self.config = config if config is not None else LinkConfig()
        self._last_rx = 0.0
        self._pending: _Pending | None = None
        self._response_deadline: float | None = None
        #: Set by the owner while it cannot take another message: a good frame
        #: is then NAKed (the sender retries later) instead of ACKed and queued.
        #: Only a line with a handshake can refuse; without one, frames pass.
        self.busy = False

    @property
    def awaiting_ack(self) -> bool:
        """True while a sent frame (or its ENQ) waits for the peer's ACK."""
        return self._pending is not None

    # --- receiving ---------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes read from the line at time `now`.

        A partial frame older than the inter-byte timeout is dropped before
        the new bytes are fed: on a serial line they start a new frame.
        """
        events = self._expire_partial(now)
        if data:
            self._last_rx = now
        for event in self.framer.feed(data):
            events.extend(self._on_framer_event(event, now))
        return events

    def without_inter_byte_timeout(self) -> None:
        """For a reliable stream (TCP with a length header): never drop a partial frame."""
        self.config = replace(self.config, inter_byte_timeout=None)

    def _on_framer_event(self, event: Event, now: float) -> list[Event]:
        match event:
            case FrameReceived():
                return self._on_frame(event)
            case FrameRejected():
                return [*self._answer(SendNak()), event]
            case BlockAccepted():
                return [*self._answer(SendAck()), event]
            case ControlReceived(code=code):
                return self._on_control(event, code, now)
        return [event]

    def _on_frame(self, frame: FrameReceived) -> list[Event]:
        split = split_envelope(frame.payload, self.config.has_tpdu, self.config.header_len)
        if isinstance(split, FrameRejected):
            return [*self._answer(SendAck()), split]
        if self.busy and self.config.handshake is not Handshake.NONE:
            # The NAK asks for the closing block only: the blocks before it,
            # already ACKed, must be there when it comes again.
            if frame.earlier_blocks and isinstance(self.framer, HoldsBlocks):
                self.framer.hold_blocks(frame.payload[:frame.earlier_blocks],
                                        frame.payload[frame.earlier_blocks:])
            return [SendNak(), FrameRejected("receiver busy: earlier messages not answered yet")]
        self._response_deadline = None
        envelope, message = split
        return [*self._answer(SendAck()), MessageReceived(message, envelope)]

    def _answer(self, reply: Write) -> list[Event]:
        return [] if self.config.handshake is Handshake.NONE else [reply]

    def _on_control(self, event: ControlReceived, code: int, now: float) -> list[Event]:
        if code in (ACK, NAK) and self._pending is not None:
            return self._on_ack(now) if code == ACK else self._retry(now, "NAK")
        if code == ENQ and self.config.handshake is Handshake.ENQ_ACK_NAK:
            return [SendAck()]
        return [event]

    # --- sending -----------------------------------------------------------

    def send(self, message: bytes, now: float, envelope: Envelope | None = None) -> list[Event]:
        """Frame `message` in `envelope` (None: empty) and start sending it."""
        if self._pending is not None:
            raise FramingError("send: the previous message still waits for its ACK")
        envelope = envelope if envelope is not None else Envelope()
        self._check_envelope(envelope)
        frame = self.framer.frame(join_envelope(envelope, message))
        deadline = now + self.config.ack_timeout
        match self.config.handshake:
            case Handshake.NONE:
                return [Write(frame), Delivered()]
            case Handshake.ACK_NAK:
                self._pending = _Pending(frame, _Phase.FRAME, deadline)
                return [Write(frame)]
            case Handshake.ENQ_ACK_NAK:
                self._pending = _Pending(frame, _Phase.ENQ, deadline)
                return [Write(bytes((ENQ,)))]

    def _check_envelope(self, envelope: Envelope) -> None:
        if (envelope.tpdu is not None) != self.config.has_tpdu:
            needs = "needs" if self.config.has_tpdu else "has no"
            raise FramingError(f"send: this link {needs} a TPDU")
        if len(envelope.header) != self.config.header_len:
            raise FramingError(f"send: this link needs a {self.config.header_len}-byte header")

    def _on_ack(self, now: float) -> list[Event]:
        pending = self._pending
        assert pending is not None
        if pending.phase is _Phase.ENQ:  # the line is ours: now the frame itself
            pending.phase, pending.retransmits = _Phase.FRAME, 0
            pending.deadline = now + self.config.ack_timeout
            return [Write(pending.frame)]
        self._pending = None
        return [*self._end_of_transmission(), Delivered()]

    def _retry(self, now: float, reason: str) -> list[Event]:
        pending = self._pending
        assert pending is not None
        if pending.retransmits >= self.config.max_retransmits:
            self._pending = None
            failed = DeliveryFailed(reason, attempts=pending.retransmits + 1)
            return [*self._end_of_transmission(), failed]
        pending.retransmits += 1
        pending.deadline = now + self.config.ack_timeout
        data = bytes((ENQ,)) if pending.phase is _Phase.ENQ else pending.frame
        return [Retransmit(data, pending.retransmits, reason)]

    def _end_of_transmission(self) -> list[Event]:
        if self.config.handshake is Handshake.ENQ_ACK_NAK:
            return [Write(bytes((EOT,)))]
        return []

    # --- timers ------------------------------------------------------------

    def expect_response(self, now: float) -> None:
        """Start the response timer; the next MessageReceived stops it."""
        self._response_deadline = now + self.config.response_timeout

    def poll(self, now: float) -> list[Event]:
        """Fire every timer due at `now`."""
        events = self._expire_partial(now)
        if self._pending is not None and now >= self._pending.deadline:
            events.extend(self._retry(now, "ACK timeout"))
        if self._response_deadline is not None and now >= self._response_deadline:
            self._response_deadline = None
            events.append(ResponseTimeout())
        return events

    def next_deadline(self) -> float | None:
        """When `poll` next has something to do, or None when no timer runs."""
        deadlines = [
            self._partial_deadline(),
            self._blocks_deadline(),
            self._pending.deadline if self._pending is not None else None,
            self._response_deadline,
        ]
        return min((d for d in deadlines if d is not None), default=None)

    def _partial_deadline(self) -> float | None:
        if not self.framer.in_frame or self.config.inter_byte_timeout is None:
            return None
        return self._last_rx + self.config.inter_byte_timeout

    def _blocks_deadline(self) -> float | None:
        if not self.framer.assembling:
            return None
        retry_window = self.config.ack_timeout * (self.config.max_retransmits + 1)
        return self._last_rx + retry_window

    def _expire_partial(self, now: float) -> list[Event]:
        events: list[Event] = []
        partial = self._partial_deadline()
        if partial is not None and now >= partial:
            dropped = self.framer.drop_partial()
            events.append(PartialFrameDropped(dropped, "inter-byte timeout"))
        blocks = self._blocks_deadline()
        if blocks is not None and now >= blocks:
            dropped = self.framer.reset()
            events.append(PartialFrameDropped(dropped, "multi-block message abandoned"))
        return events


def split_envelope(
    frame: bytes, has_tpdu: bool, header_len: int
) -> tuple[Envelope, bytes] | FrameRejected:
    """Split a frame payload into (envelope, message), or a FrameRejected if too short.

    Never raises: the rejection is an event the caller can emit as is.
    """
    envelope_size = (TPDU_SIZE if has_tpdu else 0) + header_len
    if len(frame) < envelope_size:
        return FrameRejected(
            f"frame of {len(frame)} bytes is shorter than its {envelope_size}-byte envelope",
            len(frame),
        )
    tpdu = Tpdu.from_bytes(frame[:TPDU_SIZE]) if has_tpdu else None
    start = TPDU_SIZE if has_tpdu else 0
    header = frame[start : start + header_len]
    return Envelope(tpdu, header), frame[envelope_size:]
