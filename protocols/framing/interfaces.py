"""The two shapes drivers and the link rely on: `Framer` and `MessageLink`.

Every framer (length-prefixed, STX/ETX, DLE) satisfies `Framer`; `Link`
satisfies `MessageLink`, so a driver runs any firmware profile with one loop::

    link = build_link(spec)
    for event in link.receive_data(chunk, now):   # and link.poll(now) on deadline
        if isinstance(event, Write):
            port.write(event.data)
        elif isinstance(event, MessageReceived):
            ...
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from posgw.protocols.framing.envelope import Envelope
from posgw.protocols.framing.events import Event


class Framer(Protocol):
    """Bytes in, frame events out; no clock, no I/O."""

    @property
    def max_frame(self) -> int: ...

    @property
    def in_frame(self) -> bool:
        """True while part of a frame is buffered."""
        ...

    @property
    def assembling(self) -> bool:
        """True while accepted blocks wait for the closing block."""
        ...

    @property
    def buffered(self) -> int:
        """Bytes held right now; never more than max_frame plus a few."""
        ...

    def feed(self, data: bytes) -> list[Event]: ...

    def frame(self, payload: bytes) -> bytes: ...

    def drop_partial(self) -> int:
        """Discard the frame being received; return bytes dropped."""
        ...

    def reset(self) -> int:
        """Discard everything buffered, blocks included; return bytes dropped."""
        ...


@runtime_checkable
class HoldsBlocks(Protocol):
    """A framer with multi-block frames (STX/ETX with ETB)."""

    def hold_blocks(self, blocks: bytes, closing: bytes) -> None:
        """The closing block `closing` was refused (NAK): keep the accepted
        `blocks` for its repeat, and only for that."""
        ...


class MessageLink(Protocol):
    """One terminal line: frames, envelopes, handshake and timers. Times in seconds."""

    def receive_data(self, data: bytes, now: float) -> list[Event]: ...

    def send(self, message: bytes, now: float, envelope: Envelope | None = None) -> list[Event]: ...

    def expect_response(self, now: float) -> None: ...

    def poll(self, now: float) -> list[Event]: ...

    def next_deadline(self) -> float | None: ...
