"""The skeleton shared by framers whose frames start with a marker byte.

Such a framer is a state machine whose current state is the method that
handles the next bytes (`_step`). Between frames it hunts: bytes before the
start marker are counted, never stored, and reported as one `GarbageSkipped`
per run; a link control byte (ACK, NAK, ENQ, EOT) found while hunting becomes
`ControlReceived` so the link can steer its handshake.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from posgw.protocols.framing.checks import Check
from posgw.protocols.framing.control import LINK_CONTROLS
from posgw.protocols.framing.events import ControlReceived, Event, GarbageSkipped

Step = Callable[[bytes, int, list[Event]], int]
"""A state: consumes data from index on, appends events, returns the next index."""


class HuntingFramer:
    """Chunk-driven state machine that hunts for a start marker between frames.

    Subclasses set `check` and `_check_bytes` and implement `_finish`, which
    runs once the check bytes after the end marker are all in.
    """

    check: Check
    _check_bytes: bytearray

    def __init__(self, start_marker: int) -> None:
        codes = bytes(sorted({start_marker, *LINK_CONTROLS}))
        self._hunt_pattern = re.compile(b"[" + re.escape(codes) + b"]")
        self._garbage = 0
        self._step: Step = self._hunt

    @property
    def in_frame(self) -> bool:
        """True while part of a frame is buffered."""
        return self._step != self._hunt

    def feed(self, data: bytes) -> list[Event]:
        """Consume `data`; return the events it completes, in order."""
        events: list[Event] = []
        index = 0
        while index < len(data):
            index = self._step(data, index, events)
        self._flush_garbage(events)
        return events

    def _hunt(self, data: bytes, index: int, events: list[Event]) -> int:
        found = self._hunt_pattern.search(data, index)
        stop = found.start() if found else len(data)
        self._garbage += stop - index
        if found is None:
            return stop
        code = data[stop]
        if code in LINK_CONTROLS:
            self._flush_garbage(events)
            events.append(ControlReceived(code))
        else:
            self._on_start_marker(events)
        return stop + 1

    def _on_start_marker(self, events: list[Event]) -> None:
        """The start marker was consumed; flush garbage once a frame really begins."""
        raise NotImplementedError

    def _read_check(self, data: bytes, index: int, events: list[Event]) -> int:
        end = index + self.check.size - len(self._check_bytes)
        self._check_bytes += data[index:end]
        if len(self._check_bytes) == self.check.size:
            self._finish(events)
        return min(end, len(data))

    def _finish(self, events: list[Event]) -> None:
        """The whole frame and its check are in: verify and emit."""
        raise NotImplementedError

    def _flush_garbage(self, events: list[Event]) -> None:
        if self._garbage:
            events.append(GarbageSkipped(self._garbage))
            self._garbage = 0
