"""FramedChannel: a profile's sans-IO `Link` run over any `Transport`.

This is the terminal session's link layer. It owns two tasks in one
TaskGroup: a reader that feeds received bytes to the link and handles what
comes out (writes every `Write` in order, queues received messages,
resolves pending sends), and a timer that fires `link.poll` at
`link.next_deadline()`. They are separate so that waiting for a timer
never cancels a transport read (a cancelled read may lose bytes in flight);
bytes go straight from the read to the link, with no hand-off between
tasks, because that hop is paid on every message while timers are rare
(a TCP line with no handshake has none at all).

Peer faults (garbage, partial frames, bad checks) are events, never errors:
the channel keeps running and reports them through `on_event`. Two things
end it: the transport closing (`receive` then raises LinkClosed once the
queue is drained) and, on a length-prefixed TCP stream, a `FrameRejected`:
there the stream offset is lost for good, so the channel closes the
transport (jPOS channels drop the socket on a bad length the same way; see
protocols.framing.length). On serial and USB the framer resynchronises on
the next request, so the line stays open.

Flow control: received messages wait in a queue for the session. A
terminal waits for each answer, so only a broken or hostile peer gets
ahead of the session; while `max_waiting` messages wait, the link refuses
good frames (`Link.busy`: NAK on a line with a handshake, so the peer sends
again later). The reader must keep reading meanwhile, because the peer's
ACK of our last answer, which the session waits for, is behind the flood
in the byte stream. Together with the transport's own bound (a serial
line's reader thread stops at 64 unconsumed chunks) a flood costs bounded
memory.

Time limits (`limits`, a listener's TCP sessions; a serial line may
rightly sit idle for hours): the reader closes the line when nothing
arrives for `idle_timeout_s` (longer than any answer takes), when a message stalls for
`inter_byte_timeout_s` between two bytes, or when a message begun is not
complete within `message_timeout_s` (a slowloris keeps every gap short).

The channel owns the transport: leaving `async with` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Final

from posgw.drivers.base import LinkClosed, Transport
from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.drivers.session_limits import SessionLimits
from posgw.protocols.framing import (
    Delivered,
    DeliveryFailed,
    Envelope,
    Event,
    FrameRejected,
    LengthPrefixedFramer,
    Link,
    MessageReceived,
    Write,
)

log = logging.getLogger(__name__)

EventCallback = Callable[[Event], None]

#: Received messages waiting for the session before the link refuses more
#: (NAK, on lines with a handshake). A terminal waits for each answer; only
#: a broken or hostile peer gets this far ahead, and it must not grow memory.
DEFAULT_MAX_WAITING = 16


class _Signal:
    """The marker queued after the last message once the line is gone."""

    def __repr__(self) -> str:
        return "EOF"


_EOF: Final = _Signal()


class FramedChannel:
    """Messages in and out of one terminal line; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        link: Link,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_event: EventCallback | None = None,
        close_on_lost_sync: bool | None = None,
        max_waiting: int = DEFAULT_MAX_WAITING,
        limits: SessionLimits | None = None,
    ) -> None:
        self.transport = transport
        self.link = link
        self._clock = clock
        self._limits = limits
        self._last_rx = self._message_started = clock.monotonic()
        self.timed_out: str | None = None  # why the reader closed the line, if it did
        self._on_event = on_event
        if close_on_lost_sync is None:
            close_on_lost_sync = (
                isinstance(link.framer, LengthPrefixedFramer)
                and transport.identity.kind == "tcp"
            )
        self._close_on_lost_sync = close_on_lost_sync
        self._max_waiting = max_waiting
        if close_on_lost_sync:  # TCP delivers every byte: a late one is not noise
            link.without_inter_byte_timeout()
        self._timers_changed = asyncio.Event()  # send, expect_response, bytes: recompute
        self._received: asyncio.Queue[MessageReceived | _Signal] = asyncio.Queue()
        self._io_lock = asyncio.Lock()  # one link call + its writes at a time
        self._send_lock = asyncio.Lock()  # the link holds one unacknowledged frame
        self._pending_send: asyncio.Future[bool] | None = None
        self._closed = False
        self._group: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        """True once the transport is gone (peer closed, unplugged, or we closed)."""
        return self._closed

    # --- lifetime ------------------------------------------------------------

    async def __aenter__(self) -> FramedChannel:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._reader = self._group.create_task(self._read_loop(), name="channel-reader")
        self._timer = self._group.create_task(self._timer_loop(), name="channel-timer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        for task in (self._reader, self._timer):
            if task is not None:
                task.cancel()
        try:
            # our tasks are cancelled: the body's own exception (if any) must
            # propagate as is, not wrapped in an ExceptionGroup
            await self._group.__aexit__(None, None, None)
        finally:
            self._mark_closed()
            # A cancelled task keeps its CancelledError, whose traceback holds
            # our frames and so us: a cycle only the full collector would
            # free, holding each closed session's memory until then.
            self._reader = self._timer = self._group = None
            await self.transport.close()

    # --- API -----------------------------------------------------------------

    async def receive(self) -> MessageReceived:
        """The next message; raises LinkClosed once closed and nothing is queued."""
        item = await self._received.get()
        if isinstance(item, _Signal):
            self._received.put_nowait(item)  # every later receive sees it too
            raise LinkClosed(f"{self.transport.identity.key}: link closed")
        return item

    async def send(self, message: bytes, envelope: Envelope | None = None) -> bool:
        """Send one message: True once delivered, False after DeliveryFailed.

        Without a handshake a message is delivered once written. The link
        never re-sends a delivered message. Raises LinkClosed if the line
        goes away first.
        """
        async with self._send_lock:
            if self._closed:
                raise LinkClosed(f"{self.transport.identity.key}: link closed")
            outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._pending_send = outcome
            async with self._io_lock:
                events = self.link.send(message, self._clock.monotonic(), envelope)
                await self._handle(events)
            self._note_timers()  # an ACK timer may have started
            try:
                return await outcome
            finally:
                self._pending_send = None

    def expect_response(self) -> None:
        """Start the link's response timer (ResponseTimeout goes to on_event)."""
        self.link.expect_response(self._clock.monotonic())
        self._note_timers()

    # --- tasks ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._read()
                async with self._io_lock:
                    now = self._clock.monotonic()
                    self.link.busy = self._received.qsize() >= self._max_waiting
                    was_in_frame = self.link.framer.in_frame
                    events = self.link.receive_data(data, now)
                    self._note_received(now, was_in_frame, events)
                    await self._handle(events)
                self._note_timers()  # e.g. an inter-byte timer for a partial frame
        except LinkClosed:
            pass
        except TimeoutError:
            log.warning("%s closed: %s", self.transport.identity.key, self.timed_out)
        finally:
            self._mark_closed()

    async def _read(self) -> bytes:
        """The next bytes; TimeoutError (reason in `timed_out`) past a time limit."""
        if self._limits is None:
            return await self.transport.read()
        delay, self.timed_out = self._read_deadline(self._limits)
        async with asyncio.timeout(max(delay, 0.0)):
            return await self.transport.read()

    def _read_deadline(self, limits: SessionLimits) -> tuple[float, str]:
        """Seconds left before the line is closed, and the reason it then would be."""
        now = self._clock.monotonic()
        if not self.link.framer.in_frame:
            return (self._last_rx + limits.idle_timeout_s - now,
                    f"nothing received for {limits.idle_timeout_s:g} s (idle_timeout_s)")
        stalled = self._last_rx + limits.inter_byte_timeout_s
        unfinished = self._message_started + limits.message_timeout_s
        if unfinished <= stalled:
            return (unfinished - now, f"a message begun {limits.message_timeout_s:g} s ago "
                                      "is still incomplete (message_timeout_s)")
        return (stalled - now, f"no byte for {limits.inter_byte_timeout_s:g} s inside a "
                               "message (inter_byte_timeout_s)")

    def _note_received(self, now: float, was_in_frame: bool, events: list[Event]) -> None:
        self._last_rx = now
        if self.link.framer.in_frame and (
                not was_in_frame or any(isinstance(e, MessageReceived) for e in events)):
            self._message_started = now  # a new message began in these bytes

    async def _timer_loop(self) -> None:
        while True:
            await self._until_deadline()
            async with self._io_lock:
                now = self._clock.monotonic()
                deadline = self.link.next_deadline()
                if deadline is not None and now >= deadline:
                    await self._handle(self.link.poll(now))

    async def _until_deadline(self) -> None:
        """Return at the link's next deadline; wait afresh whenever timers change."""
        while True:
            self._timers_changed.clear()
            deadline = self.link.next_deadline()
            delay = None if deadline is None else deadline - self._clock.monotonic()
            if delay is not None and delay <= 0:
                return
            try:
                async with asyncio.timeout(delay):
                    await self._timers_changed.wait()
            except TimeoutError:
                return

    def _note_timers(self) -> None:
        if self.link.next_deadline() is not None:
            self._timers_changed.set()

    # --- events --------------------------------------------------------------

    async def _handle(self, events: list[Event]) -> None:
        for event in events:
            if self._on_event is not None:
                self._on_event(event)
            match event:
                case Write(data=data):
                    await self._write(data)
                case MessageReceived():
                    self._received.put_nowait(event)
                case Delivered():
                    self._resolve_send(True)
                case DeliveryFailed():
                    self._resolve_send(False)
                case FrameRejected() if self._close_on_lost_sync:
                    await self._drop_transport()

    async def _write(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            await self.transport.write(data)
        except LinkClosed:
            await self._drop_transport()

    def _resolve_send(self, delivered: bool) -> None:
        if self._pending_send is not None and not self._pending_send.done():
            self._pending_send.set_result(delivered)

    async def _drop_transport(self) -> None:
        """Close the line now; the reader then stops and queues EOF."""
        self._mark_closed()
        await self.transport.close()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()  # the reader itself just stops: its next read fails

    def _mark_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._received.put_nowait(_EOF)
        if self._pending_send is not None and not self._pending_send.done():
            self._pending_send.set_exception(LinkClosed("link closed before delivery"))
            # the awaiting send() retrieves it; avoid "exception never retrieved"
            with contextlib.suppress(Exception):
                self._pending_send.exception()
