"""TCP transports: asyncio streams, a dialling helper and an owned server.

`TcpServer` owns one task per accepted connection in its TaskGroup; leaving
`async with` stops listening, closes every connection, cancels the handlers
and waits for them. A handler's unexpected exception is logged with the peer address
and ends that connection only: one bad terminal never stops the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from posgw.drivers.base import LinkClosed, LinkUnavailable, TerminalIdentity
from posgw.drivers.session_limits import SessionLimits, ThrottledLog

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
        self.identified = False

    def mark_identified(self) -> None:
        """A terminal the gateway serves has been answered on this connection: a
        listener at its cap keeps it (see TcpServer)."""
        self.identified = True

    def abort(self) -> None:
        """Close now, from synchronous code, dropping what is unsent; the
        pending read sees the end."""
        self._closed = True
        self._writer.transport.abort()

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
#: accept() out of descriptors (EMFILE) or memory: wait this long, doubling up
#: to the maximum, before trying again; the kernel keeps the clients queued.
ACCEPT_BACKOFF_S, ACCEPT_BACKOFF_MAX_S = 0.1, 2.0
#: At shutdown, handlers get this long to end on their closed line before
#: they are cancelled.
HANDLER_EXIT_GRACE_S = 1.0
#: One log line per this many seconds for a repeated accept() error or refusal.
THROTTLED_LOG_INTERVAL_S = 10.0
#: A new connection's time to be answered once (a terminal sends its request at
#: once) before it may be closed to make room at the cap.
IDENTIFY_GRACE_S = 2.0
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(slots=True, eq=False)
class _Connection:
    """One accepted socket, from accept() to the end of its handler."""

    sock: socket.socket
    address: str
    opened_at: float
    transport: TcpTransport | None = None  # once the stream is set up
    closing: bool = False

    @property
    def identified(self) -> bool:
        return self.transport is not None and self.transport.identified

    def close_now(self) -> None:
        """End the connection; its peer sees the end at once.

        Before its stream is set up the socket is only shut down, and
        `TcpServer._serve` closes it: asyncio may already watch its
        descriptor, and one closed under the loop goes to the next accept()
        while the loop still holds it as this one's, so that connection
        would never be read.
        """
        self.closing = True
        if self.transport is not None:
            self.transport.abort()
            return
        with contextlib.suppress(OSError):  # the peer may be gone already
            self.sock.shutdown(socket.SHUT_RDWR)


class TcpServer:
    """Listen on `host:port`; run `on_connection(transport)` for each client.

    With `limits` (a terminal listener), at most `max_connections` sockets
    are held, `max_per_address` from one source address. At the cap a new
    connection takes the place of one on which no terminal has been answered
    yet (`TcpTransport.mark_identified`): from the source address holding
    the most such connections, one open longer than IDENTIFY_GRACE_S before
    a younger one, then the oldest. Sockets held open by strangers thus
    cannot lock out a terminal, and a stranger churning sockets from a few
    addresses closes its own, not a terminal's fresh connection before its
    first answer (a terminal has its own address). If every connection is
    identified, the new one is closed. accept() errors are logged at most
    once per interval, with a count, and accept() backs off meanwhile.
    """

    def __init__(self, host: str, port: int, on_connection: ConnectionHandler,
                 limits: SessionLimits | None = None) -> None:
        self.host = host
        self._requested_port = port
        self._on_connection = on_connection
        self.limits = limits
        self._sock: socket.socket | None = None
        self._group: asyncio.TaskGroup | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._connections: dict[_Connection, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # every running handler
        self._accept_errors = ThrottledLog(log, THROTTLED_LOG_INTERVAL_S)
        self._refusals = ThrottledLog(log, THROTTLED_LOG_INTERVAL_S)
        self._evictions = ThrottledLog(log, THROTTLED_LOG_INTERVAL_S)
        self.refused = 0  # connections closed at once: over a cap
        self.evicted = 0  # unidentified connections closed to make room

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when 0 was asked)."""
        assert self._sock is not None, "port is known once the server runs"
        return int(self._sock.getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def __aenter__(self) -> TcpServer:
        self._sock = await asyncio.to_thread(_listening_socket, self.host, self._requested_port)
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._accepting = self._group.create_task(self._accept_loop(self._sock),
                                                  name=f"accept-{self.host}:{self.port}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._sock is not None and self._group is not None
        if self._accepting is not None:
            self._accepting.cancel()
        self._sock.close()
        # Abort, not close-and-wait: a peer that stopped reading would keep a
        # graceful close (and so the daemon's stop) waiting on its buffer.
        for connection in list(self._connections):
            connection.close_now()
        if self._tasks:  # handlers see their line closed; one blocked elsewhere is cancelled
            # every handler, evicted ones included: the group waits for them all
            _, blocked = await asyncio.wait(self._tasks, timeout=HANDLER_EXIT_GRACE_S)
            for task in blocked:
                task.cancel()
        # handlers are cancelled: let the body's own exception propagate unwrapped
        await self._group.__aexit__(None, None, None)

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        backoff = ACCEPT_BACKOFF_S
        while True:
            try:
                conn, address = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:  # e.g. ECONNABORTED: that client only
                    self._accept_errors.warning("accept() on %s:%d: %s", self.host,
                                                self.port, exc)
                    continue
                self._accept_errors.warning(
                    "accept() on %s:%d: %s; new connections wait in the backlog (retrying "
                    "in %.1f s); raise LimitNOFILE or lower max_connections", self.host,
                    self.port, exc.strerror or exc, backoff)
                await asyncio.sleep(backoff)  # a backoff, not a synchronisation
                backoff = min(backoff * 2, ACCEPT_BACKOFF_MAX_S)
                continue
            backoff = ACCEPT_BACKOFF_S
            self._admit(_Connection(conn, str(address[0]) if address else "?",
                                    loop.time()), address[1] if address else 0)

    def _admit(self, connection: _Connection, port: int) -> None:
        """Serve `connection`, or close it when a cap says so."""
        limits = self.limits
        peer = f"tcp:{connection.address}:{port}"
        if limits is not None:
            same = sum(c.address == connection.address for c in self._connections)
            if same >= limits.max_per_address:
                self._refuse(connection, peer, f"{same} connections from that address "
                                               "(max_connections_per_address)")
                return
            if len(self._connections) >= limits.max_connections and not self._evict():
                self._refuse(connection, peer, f"{len(self._connections)} connections, each "
                                               "with an identified terminal (max_connections)")
                return
        assert self._group is not None
        task = self._group.create_task(self._serve(connection), name=peer)
        self._connections[connection] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _evict(self) -> bool:
        """Close an unidentified connection: from the address holding the most,
        then one past its grace period before a younger one, then the oldest."""
        unidentified = [c for c in self._connections if not c.identified]
        if not unidentified:
            return False
        counts = Counter(c.address for c in unidentified)
        grace_ends = asyncio.get_running_loop().time() - IDENTIFY_GRACE_S
        victim = min(unidentified, key=lambda c: (-counts[c.address],
                                                  c.opened_at > grace_ends, c.opened_at))
        self.evicted += 1
        self._evictions.warning("listener %s:%d full: closing %s, the oldest connection with "
                                "no identified terminal from the busiest address, for a new "
                                "one", self.host, self.port, _peer_of(victim))
        victim.close_now()
        del self._connections[victim]  # its slot is free now; its task ends
        return True

    def _refuse(self, connection: _Connection, peer: str, why: str) -> None:
        self.refused += 1
        self._refusals.warning("listener %s:%d: connection from %s closed: %s", self.host,
                               self.port, peer, why)
        connection.sock.close()  # never handed to asyncio

    async def _serve(self, connection: _Connection) -> None:
        try:
            transport = await self._set_up(connection)
            if transport is not None:
                await self._on_connection(transport)
        except LinkClosed:
            pass
        except Exception:
            log.exception("connection handler failed for %s", _peer_of(connection))
        finally:
            self._connections.pop(connection, None)
            if connection.transport is not None:
                await connection.transport.close()

    async def _set_up(self, connection: _Connection) -> TcpTransport | None:
        """The connection's stream; None when it was closed meanwhile."""
        if connection.closing:  # evicted before its task ran
            connection.sock.close()
            return None
        try:
            reader, writer = await asyncio.open_connection(sock=connection.sock)
        except OSError as exc:
            log.warning("connection from %s lost while being set up: %s", connection.address,
                        exc)
            connection.sock.close()
            return None
        transport = connection.transport = TcpTransport(reader, writer)
        if connection.closing:  # evicted while being set up: closed through asyncio
            transport.abort()
            return None
        return transport


def _peer_of(connection: _Connection) -> str:
    if connection.transport is not None:
        return connection.transport.identity.key
    return f"tcp:{connection.address}"


def _listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket on the first address `host` resolves to."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]
    sock = socket.create_server(address[:2], family=family, backlog=LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock
