"""Events returned by the framers and the link.

Every event is a small frozen value. Two families:

* framer events (`feed` results): `FrameReceived`, `FrameRejected`,
  `GarbageSkipped`, `BlockAccepted`, `ControlReceived`;
* link events (`Link` results): `MessageReceived`, the `Write` family
  (`Write`, `Retransmit`, `SendAck`, `SendNak`), `Delivered`,
  `DeliveryFailed`, `ResponseTimeout`, `PartialFrameDropped`, plus the framer
  events the link passes through (`FrameRejected`, `GarbageSkipped`,
  `BlockAccepted`, `ControlReceived`).

A driver writes `event.data` of every `Write` (SendAck, SendNak and
Retransmit are Writes) in order; `wire_bytes` does exactly that. Reprs show
payload *lengths* only: a payload may hold a PAN (DESIGN rule 5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from posgw.protocols.framing.control import ACK, NAK
from posgw.protocols.framing.envelope import Envelope


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every framing event."""


# --- framer events -----------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class FrameReceived(Event):
    """A complete frame passed its length/check; `payload` has the framing removed.

    `earlier_blocks`: how many leading bytes of `payload` came in earlier ETB
    blocks (0 for a one-block frame); a link that refuses the closing block
    hands them back to the framer (`HoldsBlocks.hold_blocks`).
    """

    payload: bytes
    earlier_blocks: int = 0

    def __repr__(self) -> str:
        return (f"FrameReceived(<{len(self.payload)} bytes, "
                f"{self.earlier_blocks} in earlier blocks>)")


@dataclass(frozen=True, slots=True)
class FrameRejected(Event):
    """Bytes that looked like a frame were dropped (peer's fault, never raised).

    `declared_size` is the length the peer declared, or the size reached when
    an unterminated frame was cut off; None when no size is known.
    """

    reason: str
    declared_size: int | None = None


@dataclass(frozen=True, slots=True)
class GarbageSkipped(Event):
    """`count` bytes outside any frame were discarded while hunting for a start."""

    count: int


@dataclass(frozen=True, slots=True)
class BlockAccepted(Event):
    """An intermediate (ETB) block passed its check; the sender waits for our ACK."""

    size: int


@dataclass(frozen=True, slots=True)
class ControlReceived(Event):
    """A link control byte (ACK, NAK, ENQ, EOT) arrived between frames."""

    code: int


# --- link events -------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class MessageReceived(Event):
    """An ISO 8583 message with its envelope (TPDU, fixed header) split off."""

    message: bytes
    envelope: Envelope

    def __repr__(self) -> str:
        return f"MessageReceived(<{len(self.message)} bytes>, {self.envelope!r})"


@dataclass(frozen=True, slots=True, repr=False)
class Write(Event):
    """Bytes the caller must write to the line, in event order."""

    data: bytes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True, repr=False)
class SendAck(Write):
    """Acknowledge the frame (or ENQ) just received: write ACK."""

    data: bytes = bytes((ACK,))

    def __repr__(self) -> str:
        return "SendAck()"


@dataclass(frozen=True, slots=True, repr=False)
class SendNak(Write):
    """Reject the frame just received so the peer resends it: write NAK."""

    data: bytes = bytes((NAK,))

    def __repr__(self) -> str:
        return "SendNak()"


@dataclass(frozen=True, slots=True, repr=False)
class Retransmit(Write):
    """Write the pending frame (or ENQ) again: attempt `attempt` after `reason`."""

    attempt: int
    reason: str

    def __repr__(self) -> str:
        return f"Retransmit(<{len(self.data)} bytes>, attempt={self.attempt}, {self.reason!r})"


@dataclass(frozen=True, slots=True)
class Delivered(Event):
    """The peer acknowledged our message; the link has forgotten it."""


@dataclass(frozen=True, slots=True)
class DeliveryFailed(Event):
    """The peer never acknowledged our message after `attempts` transmissions."""

    reason: str
    attempts: int


@dataclass(frozen=True, slots=True)
class ResponseTimeout(Event):
    """No message arrived within the response timeout after `expect_response`."""


@dataclass(frozen=True, slots=True)
class PartialFrameDropped(Event):
    """A frame (or multi-block message) stopped arriving; `count` bytes dropped."""

    count: int
    reason: str


def wire_bytes(events: Iterable[Event]) -> bytes:
    """Concatenate what the caller must write for `events`, in order."""
    return b"".join(event.data for event in events if isinstance(event, Write))
