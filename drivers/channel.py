"""FramedChannel: a profile's sans-IO `Link` run over any `Transport`.

This is the terminal session's link layer. It owns two tasks in one
TaskGroup: a reader that only moves transport bytes into an inbox, and a
pump that feeds the link, writes every `Write` in order, queues received
messages, resolves pending sends and fires `link.poll` at
`link.next_deadline()`. The reader is separate so that waiting for a timer
never cancels a transport read (a cancelled read may lose bytes in flight).

Peer faults (garbage, partial frames, bad checks) are events, never errors:
the channel keeps running and reports them through `on_event`. Two things
end it: the transport closing (`receive` then raises LinkClosed once the
queue is drained) and, on a length-prefixed TCP stream, a `FrameRejected`:
there the stream offset is lost for good, so the channel closes the
transport (jPOS channels drop the socket on a bad length the same way; see
protocols.framing.length). On serial and USB the framer resynchronises on
the next request, so the line stays open.

The channel owns the transport: leaving `async with` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Final

from drivers.base import LinkClosed, Transport
from drivers.clock import SYSTEM_CLOCK, Clock
from protocols.framing import (
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

EventCallback = Callable[[Event], None]


class _Signal:
    """Inbox markers besides bytes."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_WAKE: Final = _Signal("WAKE")  # timers changed (send, expect_response): recompute
_EOF: Final = _Signal("EOF")  # the reader stopped: the transport is gone


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
    ) -> None:
        self.transport = transport
        self.link = link
        self._clock = clock
        self._on_event = on_event
        if close_on_lost_sync is None:
            close_on_lost_sync = (
                isinstance(link.framer, LengthPrefixedFramer)
                and transport.identity.kind == "tcp"
            )
        self._close_on_lost_sync = close_on_lost_sync
        if close_on_lost_sync:  # TCP delivers every byte: a late one is not noise
            link.without_inter_byte_timeout()
        self._inbox: asyncio.Queue[bytes | _Signal] = asyncio.Queue()
        self._received: asyncio.Queue[MessageReceived | _Signal] = asyncio.Queue()
        self._io_lock = asyncio.Lock()  # one link call + its writes at a time
        self._send_lock = asyncio.Lock()  # the link holds one unacknowledged frame
        self._pending_send: asyncio.Future[bool] | None = None
        self._closed = False
        self._group: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        """True once the transport is gone (peer closed, unplugged, or we closed)."""
        return self._closed

    # --- lifetime ------------------------------------------------------------

    async def __aenter__(self) -> FramedChannel:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._reader = self._group.create_task(self._read_loop(), name="channel-reader")
        self._pump = self._group.create_task(self._pump_loop(), name="channel-pump")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        for task in (self._reader, self._pump):
            if task is not None:
                task.cancel()
        try:
            # our tasks are cancelled: the body's own exception (if any) must
            # propagate as is, not wrapped in an ExceptionGroup
            await self._group.__aexit__(None, None, None)
        finally:
            self._mark_closed()
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
            self._inbox.put_nowait(_WAKE)  # the ACK timer just started
            try:
                return await outcome
            finally:
                self._pending_send = None

    def expect_response(self) -> None:
        """Start the link's response timer (ResponseTimeout goes to on_event)."""
        self.link.expect_response(self._clock.monotonic())
        self._inbox.put_nowait(_WAKE)

    # --- tasks ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                self._inbox.put_nowait(await self.transport.read())
        except LinkClosed:
            pass
        finally:
            self._inbox.put_nowait(_EOF)

    async def _pump_loop(self) -> None:
        while True:
            item = await self._next_input()
            if item is _EOF:
                break
            async with self._io_lock:
                now = self._clock.monotonic()
                events = self.link.receive_data(item, now) if isinstance(item, bytes) else []
                deadline = self.link.next_deadline()
                if deadline is not None and now >= deadline:
                    events.extend(self.link.poll(now))
                await self._handle(events)
        self._mark_closed()

    async def _next_input(self) -> bytes | _Signal:
        """Next inbox item, or WAKE when the link's next deadline comes first."""
        deadline = self.link.next_deadline()
        delay = None if deadline is None else max(0.0, deadline - self._clock.monotonic())
        try:
            async with asyncio.timeout(delay):
                return await self._inbox.get()
        except TimeoutError:
            return _WAKE

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
        """Close the line now; the reader then reports EOF and the pump ends."""
        self._mark_closed()
        await self.transport.close()
        if self._reader is not None:
            self._reader.cancel()

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
