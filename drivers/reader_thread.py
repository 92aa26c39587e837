"""ReaderThread: a blocking read loop in one owned thread, feeding asyncio.

pyserial and pyusb reads block. Running each read through
`asyncio.to_thread` would lose the bytes of a read cancelled mid-way; one
long-lived thread per open line instead reads continuously into an asyncio
queue (the `serial.threaded` model: the reader is separate from what
consumes the bytes). The transport that starts it stops it on close and
joins it, so no thread outlives its transport.

The queue is bounded: the thread reads only while fewer than
`MAX_UNCONSUMED_CHUNKS` chunks wait for the consumer. Past that it blocks
and the device's own buffer fills; on a pty, or a line with RTS/CTS, the
peer's writes then block, and without flow control a UART drops what
overflows (noise, to the framer). Either way a peer sending faster than
the session answers costs this process no memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from posgw.drivers.base import LinkClosed, TerminalIdentity

# How long close() waits for the thread; reads wake at least this often.
JOIN_TIMEOUT_S = 2.0
#: Chunks read but not yet consumed before the thread stops reading. The
#: device's own buffer then fills and the peer's writes block: a peer that
#: sends faster than the session can answer (a flood, never a terminal at
#: 115,200 baud) is slowed down instead of growing this process's memory.
MAX_UNCONSUMED_CHUNKS = 64


class ReaderThread:
    """Calls `read_once()` until it raises LinkClosed or `stop()` is called.

    `read_once` returns bytes (b"" when a read timed out with nothing) and
    raises LinkClosed when the device is gone. `interrupt`, if given, wakes
    a blocked `read_once` (pyserial's `cancel_read`).
    """

    def __init__(
        self,
        read_once: Callable[[], bytes],
        name: str,
        interrupt: Callable[[], None] | None = None,
    ) -> None:
        self._read_once = read_once
        self._interrupt = interrupt
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes | LinkClosed] = asyncio.Queue()
        # one permit per chunk the queue may still take; `read` gives it back
        self._room = threading.Semaphore(MAX_UNCONSUMED_CHUNKS)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def read(self) -> bytes:
        """Next chunk; raises LinkClosed (again on every call) once the line is gone."""
        item = await self._queue.get()
        if isinstance(item, LinkClosed):
            self._queue.put_nowait(item)
            raise item
        self._room.release()  # taken in _run for this chunk
        return item

    async def stop(self) -> None:
        """Stop and join the thread; pending and later reads raise LinkClosed."""
        self._stopping.set()
        self._room.release()  # wake a thread that waits for room: it then sees _stopping
        if self._interrupt is not None:
            self._interrupt()
        await asyncio.to_thread(self._thread.join, JOIN_TIMEOUT_S)

    def _run(self) -> None:
        closed = LinkClosed("closed")
        try:
            while not self._stopping.is_set():
                data = self._read_once()
                if data:
                    self._room.acquire()  # blocks while the consumer is behind
                    self._deliver(data)
        except LinkClosed as exc:
            closed = exc
        finally:
            self._deliver(closed)

    def _deliver(self, item: bytes | LinkClosed) -> None:
        # RuntimeError: the loop is already closed, nobody is left to read
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


class ThreadedTransport:
    """A blocking device (pyserial port, pyusb interface) as a `Transport`.

    Reads run in one owned ReaderThread; writes and release run in worker
    threads. Subclasses supply the three blocking calls and the exception
    types that mean the device is gone.
    """

    device_errors: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, identity: TerminalIdentity, thread_name: str,
                 interrupt: Callable[[], None] | None = None) -> None:
        self._identity = identity
        self._closed = False
        self._reader = ReaderThread(self._read_once, thread_name, interrupt=interrupt)

    @property
    def identity(self) -> TerminalIdentity:
        return self._identity

    async def read(self, max_bytes: int = 4096) -> bytes:
        return await self._reader.read()

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise LinkClosed(f"{self._identity.key}: closed")
        try:
            await asyncio.to_thread(self._write_blocking, data)
        except self.device_errors as exc:
            raise LinkClosed(f"{self._identity.key}: {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._reader.stop()
        await asyncio.to_thread(self._release)

    def _read_once(self) -> bytes:
        raise NotImplementedError

    def _write_blocking(self, data: bytes) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError
