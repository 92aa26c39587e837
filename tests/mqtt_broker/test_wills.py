"""Last Will: published when a connection ends uncleanly, never after DISCONNECT."""

from __future__ import annotations

import contextlib
import socket

import aiomqtt

from posgw.sandbox.mqtt_broker import EmbeddedBroker
from posgw.sandbox.mqtt_broker.packets import Connect, Disconnect, Will
from posgw.sandbox.mqtt_broker.wire import Prop, Reason
from tests.mqtt_broker.clients import RawClient, client, next_messages, raw_session

STATUS = "pos/v1/B1/gateway/status"
OFFLINE_WILL = aiomqtt.Will(STATUS, b"offline", qos=1, retain=True)


async def test_will_is_published_when_the_socket_is_lost(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as watcher:
        await watcher.subscribe(STATUS, qos=1)
        dying = client(broker.port, "gw-dying", will=OFFLINE_WILL)
        with contextlib.suppress(aiomqtt.MqttError):
            async with dying:
                sock = dying._client.socket()
                assert isinstance(sock, socket.socket)
                sock.shutdown(socket.SHUT_RDWR)  # the link drops, no DISCONNECT sent
        (will,) = await next_messages(watcher, 1)
    assert (str(will.topic), will.payload) == (STATUS, b"offline")


async def test_will_published_retained_reaches_late_subscribers(
        broker: EmbeddedBroker) -> None:
    raw, _ = await RawClient.connected(broker.port, Connect(
        "gw-reset", will=Will(STATUS, b"offline", qos=1, retain=True)))
    raw.abort()  # TCP reset
    async with client(broker.port) as late:
        await late.subscribe(STATUS, qos=1)  # may run before the broker sees the reset:
        (will,) = await next_messages(late, 1)  # then the Will arrives live, not retained
    assert will.payload == b"offline"
    assert STATUS in broker.core.retained


async def test_no_will_after_a_clean_disconnect(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as watcher:
        await watcher.subscribe(STATUS, qos=1)
        async with client(broker.port, "gw-clean", will=OFFLINE_WILL) as leaving:
            await leaving.publish(STATUS, b"online", qos=1, retain=True)
        async with client(broker.port) as marker:
            await marker.publish(STATUS, b"marker", qos=1)
        received = [m.payload for m in await next_messages(watcher, 2)]
    assert received == [b"online", b"marker"]


async def test_will_is_published_when_keepalive_expires(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as watcher:
        await watcher.subscribe(STATUS, qos=1)
        # keepalive 1 s and then silence: the broker gives up after 1.5 s.
        connect = Connect("gw-silent", keepalive=1, will=Will(STATUS, b"offline", qos=1))
        async with raw_session(broker.port, connect) as silent:
            assert await silent.closed_by_broker() == [Disconnect(Reason.KEEP_ALIVE_TIMEOUT)]
        (will,) = await next_messages(watcher, 1)
    assert will.payload == b"offline"


async def test_disconnect_with_will_message_publishes_it(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as watcher:
        await watcher.subscribe(STATUS, qos=1)
        async with raw_session(broker.port, Connect(
                "gw-asks", will=Will(STATUS, b"asked", qos=1))) as raw:
            await raw.send(Disconnect(Reason.DISCONNECT_WITH_WILL))
            await raw.closed_by_broker()
        (will,) = await next_messages(watcher, 1)
    assert will.payload == b"asked"


async def test_delayed_will_is_cancelled_by_a_reconnect(broker: EmbeddedBroker) -> None:
    will = Will(STATUS, b"offline", qos=1, properties=((Prop.WILL_DELAY, 30),))
    persistent = ((Prop.SESSION_EXPIRY, 60),)
    async with client(broker.port) as watcher:
        await watcher.subscribe(STATUS, qos=1)
        raw, _ = await RawClient.connected(broker.port, Connect(
            "gw-back", clean_start=False, will=will, properties=persistent))
        raw.abort()
        async with raw_session(broker.port, Connect("gw-back", clean_start=False,
                                                    properties=persistent)):
            async with client(broker.port) as marker:
                await marker.publish(STATUS, b"marker", qos=1)
            (first,) = await next_messages(watcher, 1)
    assert first.payload == b"marker"  # the delayed Will never went out
