"""Length-prefixed framing, the way ISO 8583 travels over TCP.

A frame is a length header followed by exactly that many payload bytes (the
length never counts the header itself). Four header encodings occur:

=========  =====  ================================  ====================
kind       bytes  example for 291 bytes             seen in
=========  =====  ================================  ====================
binary2    2      ``01 23``  (big-endian)            jPOS NACChannel, UnionPay
bcd2       2      ``02 91``  (packed BCD digits)     jPOS BCDChannel
ascii4     4      ``30 32 39 31`` ("0291")           jPOS ASCIIChannel
hex4       4      ``30 31 32 33`` ("0123")           some acquirer hosts
=========  =====  ================================  ====================

Resynchronisation: a length-prefixed stream has no start marker, so once a
header is invalid or declares more than `max_frame`, the framer cannot know
where the next frame starts. It reports `FrameRejected`, discards everything
buffered (including the rest of that chunk, never storing the oversized
body) and reads a fresh header from the next byte fed. On TCP the offset is
then lost for good: drivers should close the connection (jPOS channels drop
the socket on a bad length the same way). On a serial line the next request,
sent after a quiet gap, parses again.
"""

from __future__ import annotations

from enum import StrEnum

from posgw.protocols.framing.errors import FramingError
from posgw.protocols.framing.events import Event, FrameReceived, FrameRejected
from posgw.protocols.iso8583.errors import SpecError

# 8 KB comfortably holds the largest ISO 8583 message a terminal sends (field
# 55 and private fields included) while bounding what a garbled header can
# make us buffer.
DEFAULT_MAX_FRAME = 8192

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class LengthHeader(StrEnum):
    """How a frame's length is written in front of it."""

    BINARY2 = "binary2"
    BCD2 = "bcd2"
    ASCII4 = "ascii4"
    HEX4 = "hex4"

    @property
    def size(self) -> int:
        """Bytes the header itself takes."""
        return 2 if self in (LengthHeader.BINARY2, LengthHeader.BCD2) else 4

    @property
    def max_length(self) -> int:
        """Largest length the header can declare."""
        return 9999 if self in (LengthHeader.BCD2, LengthHeader.ASCII4) else 0xFFFF

    def write(self, length: int) -> bytes:
        """The header declaring `length` payload bytes."""
        if not 0 <= length <= self.max_length:
            raise FramingError(f"{self.value} header cannot declare {length} bytes")
        match self:
            case LengthHeader.BINARY2:
                return length.to_bytes(2, "big")
            case LengthHeader.BCD2:
                return bytes.fromhex(f"{length:04d}")
            case LengthHeader.ASCII4:
                return f"{length:04d}".encode("ascii")
            case LengthHeader.HEX4:
                return f"{length:04X}".encode("ascii")

    def read(self, header: bytes) -> int | None:
        """The declared length, or None when `header` holds invalid characters."""
        match self:
            case LengthHeader.BINARY2:
                return int.from_bytes(header, "big")
            case LengthHeader.BCD2:
                digits = header.hex()
                return int(digits) if digits.isdigit() else None
            case LengthHeader.ASCII4:
                return int(header) if header.isdigit() else None
            case LengthHeader.HEX4:
                return int(header, 16) if _HEX_DIGITS.issuperset(header) else None


def check_max_frame(max_frame: int, header: LengthHeader | None = None) -> None:
    """Raise SpecError unless `max_frame` is positive and `header` can declare it."""
    if max_frame < 1:
        raise SpecError("framing.max_frame", f"must be at least 1, got {max_frame}")
    if header is not None and max_frame > header.max_length:
        raise SpecError(
            "framing.max_frame",
            f"{max_frame} exceeds what a {header.value} header can declare ({header.max_length})",
        )


class LengthPrefixedFramer:
    """Sans-IO framer for `header + payload` frames: bytes in, events out."""

    def __init__(self, header: LengthHeader, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        check_max_frame(max_frame, header)
        self.header = header
        self.max_frame = max_frame
        self._header_bytes = bytearray()
        self._body = bytearray()
        self._expected: int | None = None  # declared length once the header is read

    @property
    def in_frame(self) -> bool:
        """True while part of a frame is buffered."""
        return bool(self._header_bytes) or self._expected is not None

    @property
    def assembling(self) -> bool:
        """Always False: length-prefixed frames have no blocks."""
        return False

    @property
    def buffered(self) -> int:
        """Bytes currently held (at most header size + max_frame)."""
        return len(self._header_bytes) + len(self._body)

    def frame(self, payload: bytes) -> bytes:
        """`payload` with its length header in front."""
        if len(payload) > self.max_frame:
            raise FramingError(f"payload of {len(payload)} bytes exceeds max_frame")
        return self.header.write(len(payload)) + payload

    def feed(self, data: bytes) -> list[Event]:
        """Consume `data`; return one event per completed or rejected frame."""
        events: list[Event] = []
        index = 0
        while index < len(data):
            if self._expected is None:
                index = self._read_header(data, index, events)
            else:
                index = self._read_body(data, index, events)
        return events

    def drop_partial(self) -> int:
        """Discard a partly received frame; return how many bytes were dropped."""
        dropped = self.buffered
        self._header_bytes.clear()
        self._body.clear()
        self._expected = None
        return dropped

    def reset(self) -> int:
        """Discard everything buffered (same as `drop_partial` here)."""
        return self.drop_partial()

    def _read_header(self, data: bytes, index: int, events: list[Event]) -> int:
        end = index + self.header.size - len(self._header_bytes)
        self._header_bytes += data[index:end]
        if len(self._header_bytes) < self.header.size:
            return len(data)
        declared = self.header.read(bytes(self._header_bytes))
        if declared is None:
            self._reject(events, f"invalid {self.header.value} length header", None)
            return len(data)
        if declared > self.max_frame:
            self._reject(events, "declared length exceeds max_frame", declared)
            return len(data)
        self._header_bytes.clear()
        self._expected = declared
        if declared == 0:
            self._complete(events)
        return end

    def _read_body(self, data: bytes, index: int, events: list[Event]) -> int:
        assert self._expected is not None
        end = index + self._expected - len(self._body)
        self._body += data[index:end]
        if len(self._body) == self._expected:
            self._complete(events)
        return min(end, len(data))

    def _complete(self, events: list[Event]) -> None:
        events.append(FrameReceived(bytes(self._body)))
        self._body.clear()
        self._expected = None

    def _reject(self, events: list[Event], reason: str, declared: int | None) -> None:
        # No start marker to hunt for: the caller drops the rest of the chunk too.
        events.append(FrameRejected(reason, declared))
        self.drop_partial()
