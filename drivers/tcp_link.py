"""TCP transports: asyncio streams, a dialling helper and an owned server.

`TcpServer` owns one task per accepted connection in its TaskGroup; leaving
`async with` stops listening, closes every connection, cancels the handlers
and waits for them. A handler's unexpected exception is logged with the peer address
and ends that connection only: one bad terminal never stops the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from posgw.drivers.base import LinkClosed, LinkUnavailable, TerminalIdentity

log = logging.getLogger(__name__)

ConnectionHandler = Callable[["TcpTransport"], Awaitable[None]]


class TcpTransport:
    """One TCP connection as a `Transport`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername") or ("?", 0)
        self._identity = TerminalIdentity("tcp", f"tcp:{peer[0]}:{peer[1]}")
        self._closed = False

    @property
    def identity(self) -> TerminalIdentity:
        return self._identity

    async def read(self, max_bytes: int = 4096) -> bytes:
        if self._closed:
            raise LinkClosed(f"{self._identity.key}: closed")
        try:
            data = await self._reader.read(max_bytes)
        except OSError as exc:
            raise LinkClosed(f"{self._identity.key}: {exc}") from exc
        if not data:
            raise LinkClosed(f"{self._identity.key}: peer closed the connection")
        return data

    async def write(self, data: bytes) -> None:
        if self._closed or self._writer.is_closing():
            raise LinkClosed(f"{self._identity.key}: closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise LinkClosed(f"{self._identity.key}: {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        # the peer may already be gone: closing is best effort
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def connect_tcp(host: str, port: int, *, timeout: float = 10.0) -> TcpTransport:
    """Dial `host:port`; raises LinkUnavailable when refused or timed out."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        raise LinkUnavailable(f"tcp:{host}:{port}: {exc or 'connect timed out'}") from exc
    return TcpTransport(reader, writer)


#: A branch's terminals reconnect together after a gateway restart: room for all.
LISTEN_BACKLOG = 1024


class TcpServer:
    """Listen on `host:port`; run `on_connection(transport)` for each client."""

    def __init__(self, host: str, port: int, on_connection: ConnectionHandler) -> None:
        self.host = host
        self._requested_port = port
        self._on_connection = on_connection
        self._server: asyncio.Server | None = None
        self._group: asyncio.TaskGroup | None = None
        self._transports: set[TcpTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when 0 was asked)."""
        assert self._server is not None, "port is known once the server runs"
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> TcpServer:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        try:
            self._server = await asyncio.start_server(
                self._accepted, self.host, self._requested_port, backlog=LISTEN_BACKLOG
            )
        except BaseException:
            await self._group.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._group is not None
        self._server.close()
        for transport in list(self._transports):
            await transport.close()
        for task in self._tasks:
            task.cancel()  # a handler blocked on something else than its line
        await self._server.wait_closed()
        # handlers are cancelled: let the body's own exception propagate unwrapped
        await self._group.__aexit__(None, None, None)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # a plain callback, so asyncio starts no task of its own: ours is owned
        assert self._group is not None
        transport = TcpTransport(reader, writer)
        self._transports.add(transport)
        task = self._group.create_task(self._serve(transport), name=transport.identity.key)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, transport: TcpTransport) -> None:
        try:
            await self._on_connection(transport)
        except LinkClosed:
            pass
        except Exception:
            log.exception("connection handler failed for %s", transport.identity.key)
        finally:
            self._transports.discard(transport)
            await transport.close()
