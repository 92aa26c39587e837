"""STX ... ETX + LRC framing of ECR serial protocols, with ETB multi-block.

Wire format of one block (hex, LRC seed 0x00, STX not covered)::

    02            STX
    [00 05]       optional inner length header (here bcd2: 5 data bytes)
    31 32 33 34 35  data
    03            ETX (last block) or 17 (ETB: more blocks follow)
    xx            check over [STX] + [length] + data + [ETX/ETB]

What the check covers varies by vendor and even firmware (Nexi ECR17 lists
STX+data+ETX, data only, data+ETX and STX+data); the common default is data
plus ETX, seed 0x00. A message longer than one block is sent as ETB blocks,
each acknowledged by the receiver on its own, closed by an ETX block
(Verifone Point); this framer accepts every good ETB block with
`BlockAccepted` and returns the joined message in one `FrameReceived`.

Without an inner length header the data must not contain STX, ETX or ETB
(text protocols); with one, the counted data is transparent (binary ISO 8583,
common in Asian ECR protocols). An STX inside unterminated data means the
sender restarted: the partial frame is dropped as garbage and a new one begins.
"""

from __future__ import annotations

import re

from posgw.protocols.framing.checks import Check, LrcCheck
from posgw.protocols.framing.control import ETB, ETX, STX
from posgw.protocols.framing.errors import FramingError
from posgw.protocols.framing.events import BlockAccepted, Event, FrameReceived, FrameRejected
from posgw.protocols.framing.hunting import HuntingFramer
from posgw.protocols.framing.length import DEFAULT_MAX_FRAME, LengthHeader, check_max_frame

_DELIMITERS = re.compile(b"[\x02\x03\x17]")  # STX, ETX, ETB


class StxEtxFramer(HuntingFramer):
    """Sans-IO framer for STX [length] data ETX|ETB check frames."""

    def __init__(
        self,
        *,
        check: Check | None = None,
        covers_stx: bool = False,
        covers_etx: bool = True,
        inner_length: LengthHeader | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        check_max_frame(max_frame)
        super().__init__(STX)
        self.check: Check = check if check is not None else LrcCheck()
        self.covers_stx = covers_stx
        self.covers_etx = covers_etx
        self.inner_length = inner_length
        self.max_frame = max_frame
        self._length_bytes = bytearray()
        self._text = bytearray()
        self._expected = 0  # declared data length when an inner header is used
        self._terminator = ETX
        self._check_bytes = bytearray()
        self._blocks = bytearray()  # data of accepted ETB blocks
        self._held_closing: bytes | None = None  # refused closing block (hold_blocks)

    @property
    def assembling(self) -> bool:
        """True while accepted ETB blocks wait for the closing ETX block."""
        return bool(self._blocks)

    @property
    def buffered(self) -> int:
        """Bytes currently held (at most max_frame + header + check size)."""
        partial = len(self._length_bytes) + len(self._text) + len(self._check_bytes)
        return partial + len(self._blocks)

    # --- writing -----------------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        """`payload` as one block closed by ETX."""
        return self.frame_block(payload, last=True)

    def frame_blocks(self, payload: bytes, block_size: int) -> list[bytes]:
        """`payload` cut into ETB blocks of `block_size` bytes, the last closed by ETX."""
        if block_size < 1:
            raise FramingError(f"block_size must be at least 1, got {block_size}")
        self._check_size(len(payload))
        pieces = [payload[i : i + block_size] for i in range(0, len(payload), block_size)]
        pieces = pieces or [b""]
        return [
            self.frame_block(piece, last=i == len(pieces) - 1) for i, piece in enumerate(pieces)
        ]

    def frame_block(self, data: bytes, *, last: bool) -> bytes:
        """One block: STX, [length], data, ETX (or ETB when not `last`), check."""
        self._check_size(len(data))
        if self.inner_length is None and _DELIMITERS.search(data):
            raise FramingError("payload contains STX, ETX or ETB; configure an inner length")
        length = self.inner_length.write(len(data)) if self.inner_length else b""
        terminator = ETX if last else ETB
        covered = self._covered(length, data, terminator)
        return bytes((STX,)) + length + data + bytes((terminator,)) + self.check.digest(covered)

    # --- dropping ----------------------------------------------------------

    def drop_partial(self) -> int:
        """Discard the frame being received (accepted blocks stay); return bytes dropped."""
        dropped = len(self._length_bytes) + len(self._text) + len(self._check_bytes)
        self._clear_frame()
        return dropped

    def reset(self) -> int:
        """Discard the partial frame and any accepted blocks; return bytes dropped."""
        dropped = self.drop_partial() + len(self._blocks)
        self._blocks.clear()
        self._held_closing = None
        return dropped

    def hold_blocks(self, blocks: bytes, closing: bytes) -> None:
        """Keep `blocks` for a repeat of the refused closing block `closing`.

        Only that repeat completes them: a terminal that gave up and sends
        another message (a new first block, or a different one-block frame)
        gets it read alone, not glued to the old blocks.
        """
        if self._blocks:  # the sender went on without waiting for our answer
            return
        self._blocks += blocks
        self._held_closing = bytes(closing)

    # --- reading: one method per state -------------------------------------

    def _on_start_marker(self, events: list[Event]) -> None:
        self._flush_garbage(events)
        self._clear_frame()
        self._step = self._read_length if self.inner_length else self._read_text

    def _read_length(self, data: bytes, index: int, events: list[Event]) -> int:
        assert self.inner_length is not None
        end = index + self.inner_length.size - len(self._length_bytes)
        self._length_bytes += data[index:end]
        if len(self._length_bytes) < self.inner_length.size:
            return len(data)
        declared = self.inner_length.read(bytes(self._length_bytes))
        if declared is None:
            self._reject(events, f"invalid {self.inner_length.value} length header", None)
        elif len(self._blocks) + declared > self.max_frame:
            self._reject(events, "declared length exceeds max_frame", declared, drop_blocks=True)
        else:
            self._expected = declared
            self._step = self._read_counted
        return end

    def _read_counted(self, data: bytes, index: int, events: list[Event]) -> int:
        end = index + self._expected - len(self._text)
        self._text += data[index:end]
        if len(self._text) == self._expected:
            self._step = self._read_terminator
        return min(end, len(data))

    def _read_terminator(self, data: bytes, index: int, events: list[Event]) -> int:
        if data[index] in (ETX, ETB):
            self._terminator = data[index]
            self._step = self._read_check
            return index + 1
        self._reject(events, "counted data not followed by ETX or ETB", len(self._text))
        return index  # hunting looks at this byte again: it may start the next frame

    def _read_text(self, data: bytes, index: int, events: list[Event]) -> int:
        found = _DELIMITERS.search(data, index)
        stop = found.start() if found else len(data)
        size = len(self._blocks) + len(self._text) + stop - index
        if size > self.max_frame:
            self._reject(events, "frame exceeds max_frame", size, drop_blocks=True)
            return stop
        self._text += data[index:stop]
        if found is None:
            return stop
        if data[stop] == STX:  # the sender restarted: the partial frame is lost
            self._garbage += 1 + len(self._text)
            self._on_start_marker(events)
        else:
            self._terminator = data[stop]
            self._step = self._read_check
        return stop + 1

    def _finish(self, events: list[Event]) -> None:
        covered = self._covered(bytes(self._length_bytes), bytes(self._text), self._terminator)
        if self.check.digest(covered) != self._check_bytes:
            self._reject(events, "check mismatch", len(self._text))
            return
        if self._held_closing is not None:
            if self._terminator == ETB or self._text != self._held_closing:
                self._blocks.clear()  # not the repeat: the held message was given up
            self._held_closing = None
        if self._terminator == ETB:
            self._blocks += self._text
            events.append(BlockAccepted(len(self._text)))
        else:
            events.append(FrameReceived(bytes(self._blocks + self._text), len(self._blocks)))
            self._blocks.clear()
        self._clear_frame()

    # --- helpers -----------------------------------------------------------

    def _covered(self, length: bytes, data: bytes, terminator: int) -> bytes:
        start = bytes((STX,)) if self.covers_stx else b""
        end = bytes((terminator,)) if self.covers_etx else b""
        return start + length + data + end

    def _check_size(self, size: int) -> None:
        if size > self.max_frame:
            raise FramingError(f"payload of {size} bytes exceeds max_frame")

    def _reject(
        self, events: list[Event], reason: str, size: int | None, *, drop_blocks: bool = False
    ) -> None:
        self._flush_garbage(events)
        events.append(FrameRejected(reason, size))
        self._clear_frame()
        if drop_blocks:
            self._blocks.clear()

    def _clear_frame(self) -> None:
        self._length_bytes.clear()
        self._text.clear()
        self._check_bytes.clear()
        self._expected = 0
        self._step = self._hunt
