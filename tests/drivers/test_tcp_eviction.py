"""A listener at its cap closes a connection to make room: never under asyncio.

`TcpServer` closes an unidentified connection when a new one needs its
place. A connection is unidentified from accept() on, including while its
stream is being set up, when asyncio already watches its descriptor. Closing
the socket then freed the descriptor under the event loop: the next
accept() got the same number, asyncio could no longer watch it (epoll had
dropped the closed one), and that connection, often the terminal the room
was made for, was never read. Under a flood of held sockets a terminal got
no answer (tests/security/test_terminals.py, about 1 run in 10 under load).
"""

from __future__ import annotations

import asyncio
import os
import socket

from posgw.drivers.session_limits import SessionLimits
from posgw.drivers.tcp_link import TcpServer, TcpTransport, _Connection

READ_DEADLINE_S = 5.0


async def test_a_connection_closed_while_its_stream_is_set_up_leaves_the_next_readable(
        ) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as first_client, \
            socket.create_connection(listener.getsockname()) as second_client:
        first, _ = listener.accept()
        victim = _Connection(first, "127.0.0.1", 0.0)
        # TcpServer._serve's window: asyncio watches the descriptor and the
        # connection has no transport yet.
        _, first_writer = await asyncio.open_connection(sock=first)
        victim.close_now()
        second, _ = listener.accept()  # the lowest free descriptor: the victim's, if freed
        reader, writer = await asyncio.open_connection(sock=second)
        second_client.sendall(b"ping")
        async with asyncio.timeout(READ_DEADLINE_S):
            assert await reader.read(4) == b"ping"
        writer.close()
        first_client.settimeout(READ_DEADLINE_S)
        assert first_client.recv(1) == b"", "the closed connection's peer sees the end"
        first_writer.close()


async def test_a_listener_at_its_cap_answers_each_newcomer_and_leaks_no_socket() -> None:
    """One slot: each connection takes the place of the one before, which is
    closed (its peer sees the end) and whose socket is released."""
    async def echo(transport: TcpTransport) -> None:
        while True:
            await transport.write(await transport.read())

    limits = SessionLimits(max_connections=1, max_per_address=100)
    descriptors = len(os.listdir("/proc/self/fd"))
    async with TcpServer("127.0.0.1", 0, echo, limits) as server:
        clients = []
        for n in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"%02d" % n)
            async with asyncio.timeout(READ_DEADLINE_S):
                assert await reader.readexactly(2) == b"%02d" % n
            clients.append((reader, writer))
        async with asyncio.timeout(READ_DEADLINE_S):
            for reader, _ in clients[:-1]:
                assert await reader.read() == b""
        assert server.connections == 1 and server.evicted == 19
        for _, writer in clients:
            writer.close()
            await writer.wait_closed()
    assert len(os.listdir("/proc/self/fd")) <= descriptors, "a socket was left open"
