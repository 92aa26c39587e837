"""FramedChannel over TCP: messages, garbage-free streams, lost sync, close."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref

import pytest

from posgw.drivers.base import LinkClosed
from posgw.drivers.channel import FramedChannel
from posgw.drivers.tcp_link import TcpServer, TcpTransport, connect_tcp
from posgw.gateway.profiles import load_profile
from posgw.protocols.framing import Event, FrameRejected, Link, MessageReceived, build_link
from posgw.protocols.iso8583.message import Message
from tests.drivers.helpers import async_test, codec_for, purchase, wait_until

PROFILE = "iso87-ascii"  # 2-byte binary length header, no handshake


def channel_tasks() -> set[str]:
    return {n for t in asyncio.all_tasks() if (n := t.get_name()).startswith("channel-")}


def new_link() -> Link:
    return build_link(load_profile(PROFILE).framing)


@async_test()
async def test_purchase_request_and_response_cross_tcp() -> None:
    codec = codec_for(PROFILE)

    async def host(transport: TcpTransport) -> None:
        async with FramedChannel(transport, new_link()) as channel:
            request = codec.decode((await channel.receive()).message)
            reply = Message("0210", {11: request.text(11), 39: "00"})
            assert await channel.send(codec.encode(reply))
            await channel.receive()  # until the terminal hangs up

    async with TcpServer("127.0.0.1", 0, host) as server:
        transport = await connect_tcp("127.0.0.1", server.port)
        async with FramedChannel(transport, new_link()) as terminal:
            assert await terminal.send(codec.encode(purchase()))
            response = codec.decode((await terminal.receive()).message)
    assert response.mti == "0210"
    assert response.fields == {11: "000123", 39: "00"}


@async_test()
async def test_overlong_frame_is_rejected_and_tcp_connection_closed() -> None:
    events: list[Event] = []
    host_done = asyncio.Event()

    async def host(transport: TcpTransport) -> None:
        async with FramedChannel(transport, new_link(), on_event=events.append) as channel:
            try:
                await channel.receive()
            except LinkClosed:
                host_done.set()

    async with TcpServer("127.0.0.1", 0, host) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(bytes.fromhex("FFFF") + b"x" * 64)  # declares 65535 > max_frame 8192
        await writer.drain()
        await host_done.wait()
        assert await reader.read() == b""  # the gateway dropped the connection
        writer.close()
    rejected = [e for e in events if isinstance(e, FrameRejected)]
    assert rejected and rejected[0].declared_size == 0xFFFF


@async_test()
async def test_peer_close_ends_receive_with_link_closed_after_queued_messages() -> None:
    codec = codec_for(PROFILE)
    accepted: asyncio.Queue[TcpTransport] = asyncio.Queue()
    release = asyncio.Event()

    async def host(transport: TcpTransport) -> None:
        await accepted.put(transport)
        await release.wait()

    async with TcpServer("127.0.0.1", 0, host) as server:
        transport = await connect_tcp("127.0.0.1", server.port)
        async with FramedChannel(transport, new_link()) as terminal:
            peer = await accepted.get()
            async with FramedChannel(peer, new_link()) as gateway:
                await terminal.send(codec.encode(purchase("000001")))
                await terminal.send(codec.encode(purchase("000002")))
                await wait_until(lambda: gateway._received.qsize() == 2)
                await terminal.transport.close()
                await wait_until(lambda: gateway.closed)
                first = await gateway.receive()
                second = await gateway.receive()
                with pytest.raises(LinkClosed):
                    await gateway.receive()
            release.set()
    assert isinstance(first, MessageReceived) and isinstance(second, MessageReceived)
    assert codec.decode(second.message).text(11) == "000002"


@async_test()
async def test_leaving_channel_cancels_its_tasks_and_closes_transport() -> None:
    async def host(transport: TcpTransport) -> None:
        await asyncio.Event().wait()  # hold the line until the server closes

    async with TcpServer("127.0.0.1", 0, host) as server:
        transport = await connect_tcp("127.0.0.1", server.port)
        async with FramedChannel(transport, new_link()) as channel:
            assert channel_tasks() == {"channel-reader", "channel-timer"}
        assert channel.closed
        assert channel_tasks() == set()
        with pytest.raises(LinkClosed):
            await transport.read()


@async_test()
async def test_cancelling_the_owner_of_a_channel_leaves_no_task() -> None:
    async def host(transport: TcpTransport) -> None:
        await asyncio.Event().wait()

    async with TcpServer("127.0.0.1", 0, host) as server:
        entered = asyncio.Event()

        async def session() -> None:
            transport = await connect_tcp("127.0.0.1", server.port)
            async with FramedChannel(transport, new_link()) as channel:
                entered.set()
                await channel.receive()

        owner = asyncio.create_task(session())
        await entered.wait()
        owner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await owner
        assert channel_tasks() == set()


@async_test()
async def test_a_channel_the_peer_hung_up_is_freed_without_the_cycle_collector() -> None:
    # Terminals that dial per transaction leave one closed channel each: it
    # must go with its last reference, not wait for a full collection
    # (the daemon runs those rarely).
    channels: list[weakref.ref[FramedChannel]] = []

    async def host(transport: TcpTransport) -> None:
        async with FramedChannel(transport, new_link()) as channel:
            channels.append(weakref.ref(channel))
            with contextlib.suppress(LinkClosed):
                await channel.receive()

    gc.disable()
    try:
        async with TcpServer("127.0.0.1", 0, host) as server:
            terminal = await connect_tcp("127.0.0.1", server.port)
            await wait_until(lambda: len(channels) == 1)
            await terminal.close()
        assert channels[0]() is None
    finally:
        gc.enable()


@async_test()
async def test_server_exit_closes_connections_and_awaits_handlers() -> None:
    finished = asyncio.Event()

    async def host(transport: TcpTransport) -> None:
        try:
            await transport.read()
        except LinkClosed:
            finished.set()

    async with TcpServer("127.0.0.1", 0, host) as server:
        client = await connect_tcp("127.0.0.1", server.port)
        await wait_until(lambda: server.connections == 1)
    assert finished.is_set()
    with pytest.raises(LinkClosed):
        await client.read()
    await client.close()
