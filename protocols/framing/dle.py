"""DLE STX ... DLE ETX + CRC-16 framing with DLE doubling (ZVT serial transport).

Wire format (hex)::

    10 02         DLE STX: frame start
    06 01 10 10   data; a data byte 0x10 (DLE) is sent twice
    10 03         DLE ETX: frame end
    xx yy         CRC-16/KERMIT of the *unstuffed* data + ETX, low byte first

Only a DLE followed by STX or ETX is framing, so the data is transparent.
The check bytes follow DLE ETX raw (not doubled), as ZVT sends them.
"""

from __future__ import annotations

from posgw.protocols.framing.checks import Check, CrcCheck
from posgw.protocols.framing.control import DLE, ETX, STX
from posgw.protocols.framing.errors import FramingError
from posgw.protocols.framing.events import Event, FrameReceived, FrameRejected
from posgw.protocols.framing.hunting import HuntingFramer
from posgw.protocols.framing.length import DEFAULT_MAX_FRAME, check_max_frame

_DLE_BYTE = bytes((DLE,))
_ETX_BYTE = bytes((ETX,))


class DleFramer(HuntingFramer):
    """Sans-IO framer for DLE STX data DLE ETX check frames."""

    def __init__(self, *, check: Check | None = None, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        check_max_frame(max_frame)
        super().__init__(DLE)
        self.check: Check = check if check is not None else CrcCheck()
        self.max_frame = max_frame
        self._text = bytearray()  # unstuffed data
        self._check_bytes = bytearray()

    @property
    def assembling(self) -> bool:
        """Always False: DLE frames have no blocks."""
        return False

    @property
    def buffered(self) -> int:
        """Bytes currently held (at most max_frame + check size)."""
        return len(self._text) + len(self._check_bytes)

    def frame(self, payload: bytes) -> bytes:
        """`payload` framed: DLE STX, data with DLE doubled, DLE ETX, check."""
        if len(payload) > self.max_frame:
            raise FramingError(f"payload of {len(payload)} bytes exceeds max_frame")
        stuffed = payload.replace(_DLE_BYTE, _DLE_BYTE * 2)
        check = self.check.digest(payload + _ETX_BYTE)
        return bytes((DLE, STX)) + stuffed + bytes((DLE, ETX)) + check

    def drop_partial(self) -> int:
        """Discard the frame being received; return how many bytes were dropped."""
        dropped = self.buffered
        self._clear_frame()
        return dropped

    def reset(self) -> int:
        """Discard everything buffered (same as `drop_partial` here)."""
        return self.drop_partial()

    # --- reading: one method per state -------------------------------------

    def _on_start_marker(self, events: list[Event]) -> None:
        self._step = self._after_hunted_dle

    def _after_hunted_dle(self, data: bytes, index: int, events: list[Event]) -> int:
        if data[index] == STX:
            self._flush_garbage(events)
            self._clear_frame()
            self._step = self._read_text
            return index + 1
        self._garbage += 1  # a lone DLE between frames
        self._step = self._hunt
        return index  # hunting looks at this byte again: it may be a DLE

    def _read_text(self, data: bytes, index: int, events: list[Event]) -> int:
        stop = data.find(DLE, index)
        stop = len(data) if stop < 0 else stop
        if not self._room_for(stop - index, events):
            return stop
        self._text += data[index:stop]
        if stop == len(data):
            return stop
        self._step = self._after_text_dle
        return stop + 1

    def _after_text_dle(self, data: bytes, index: int, events: list[Event]) -> int:
        code = data[index]
        if code == DLE:
            if self._room_for(1, events):
                self._text.append(DLE)
                self._step = self._read_text
        elif code == ETX:
            self._step = self._read_check
        elif code == STX:  # the sender restarted: the partial frame is lost
            self._garbage += 2 + len(self._text)
            self._flush_garbage(events)
            self._clear_frame()
            self._step = self._read_text
        else:
            self._reject(events, f"invalid DLE sequence 10 {code:02X}", len(self._text))
        return index + 1

    def _finish(self, events: list[Event]) -> None:
        if self.check.digest(bytes(self._text) + _ETX_BYTE) != self._check_bytes:
            self._reject(events, "check mismatch", len(self._text))
            return
        events.append(FrameReceived(bytes(self._text)))
        self._clear_frame()

    # --- helpers -----------------------------------------------------------

    def _room_for(self, count: int, events: list[Event]) -> bool:
        size = len(self._text) + count
        if size <= self.max_frame:
            return True
        self._reject(events, "frame exceeds max_frame", size)
        return False

    def _reject(self, events: list[Event], reason: str, size: int | None) -> None:
        self._flush_garbage(events)
        events.append(FrameRejected(reason, size))
        self._clear_frame()

    def _clear_frame(self) -> None:
        self._text.clear()
        self._check_bytes.clear()
        self._step = self._hunt
