"""Publish/subscribe through the embedded broker with real aiomqtt clients."""

from __future__ import annotations

import asyncio

import aiomqtt

from posgw.sandbox.mqtt_broker import EmbeddedBroker
from posgw.sandbox.mqtt_broker.packets import (
    Connect,
    Publish,
    SubAck,
    Subscribe,
    SubscriptionRequest,
)
from tests.mqtt_broker.clients import client, next_messages, payloads, raw_session


async def test_qos1_messages_arrive_once_in_order(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as subscriber, client(broker.port) as publisher:
        await subscriber.subscribe("orders/#", qos=1)
        for n in range(200):
            await publisher.publish("orders/T1", f"{n}".encode(), qos=1)
        received = await next_messages(subscriber, 200)
    assert payloads(received) == [f"{n}".encode() for n in range(200)]
    assert {m.qos for m in received} == {1}


async def test_wildcards_route_by_level(broker: EmbeddedBroker) -> None:
    async with (client(broker.port) as by_terminal, client(broker.port) as by_branch,
                client(broker.port) as publisher):
        await by_terminal.subscribe("pos/+/T1/tx", qos=1)
        await by_branch.subscribe("pos/B1/#", qos=1)
        for topic in ("pos/B1/T1/tx", "pos/B2/T1/tx", "pos/B1/T2/status", "pos/B2/T2/tx",
                      "pos/B1/T1/tx"):  # the last one, seen by both, closes the sequence
            await publisher.publish(topic, topic.encode(), qos=1)
        terminal_topics = [str(m.topic) for m in await next_messages(by_terminal, 3)]
        branch_topics = [str(m.topic) for m in await next_messages(by_branch, 3)]
    assert terminal_topics == ["pos/B1/T1/tx", "pos/B2/T1/tx", "pos/B1/T1/tx"]
    assert branch_topics == ["pos/B1/T1/tx", "pos/B1/T2/status", "pos/B1/T1/tx"]


async def test_retained_message_is_delivered_on_subscribe(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as publisher:
        await publisher.publish("status/gw1", b"online", qos=1, retain=True)
    async with client(broker.port) as late:
        await late.subscribe("status/#", qos=1)
        (message,) = await next_messages(late, 1)
    assert (str(message.topic), message.payload, message.retain) == ("status/gw1", b"online",
                                                                     True)


async def test_empty_retained_payload_clears_the_topic(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as publisher:
        await publisher.publish("status/gw1", b"online", qos=1, retain=True)
        await publisher.publish("status/gw1", b"", qos=1, retain=True)
        async with client(broker.port) as late:
            await late.subscribe("status/#", qos=1)
            await publisher.publish("status/marker", b"live", qos=1)
            (first,) = await next_messages(late, 1)
    assert first.payload == b"live"  # no retained "online" before it


async def test_mqtt_311_clients_interoperate_with_mqtt_5(broker: EmbeddedBroker) -> None:
    async with (client(broker.port, protocol=aiomqtt.ProtocolVersion.V311) as old,
                client(broker.port) as new):
        await old.subscribe("mixed/#", qos=1)
        await new.subscribe("mixed/#", qos=1)
        await new.publish("mixed/a", b"from 5", qos=1)
        await old.publish("mixed/b", b"from 3.1.1", qos=1)
        for receiver in (old, new):
            assert payloads(await next_messages(receiver, 2)) == [b"from 5", b"from 3.1.1"]


async def test_qos2_subscription_is_granted_qos1(broker: EmbeddedBroker) -> None:
    async with raw_session(broker.port, Connect("raw-qos2")) as raw:
        await raw.send(Subscribe(1, (SubscriptionRequest("x/#", qos=2),)))
        assert await raw.receive() == SubAck(1, (1,))


async def test_shared_subscription_splits_messages_between_members(
        broker: EmbeddedBroker) -> None:
    topic = "$share/center/pos/v1/+/+/tx"
    async with (client(broker.port) as first, client(broker.port) as second,
                client(broker.port) as publisher):
        await first.subscribe(topic, qos=1)
        await second.subscribe(topic, qos=1)
        sent = [f"{n}".encode() for n in range(100)]
        for n, payload in enumerate(sent):
            await publisher.publish(f"pos/v1/B1/T{n % 3}/tx", payload, qos=1)
        async with asyncio.TaskGroup() as group:  # round robin: half each
            to_first = group.create_task(next_messages(first, 50))
            to_second = group.create_task(next_messages(second, 50))
    got_first, got_second = payloads(to_first.result()), payloads(to_second.result())
    assert sorted(got_first + got_second) == sorted(sent)  # each exactly once
    assert len(got_first) == len(got_second) == 50


async def test_messages_with_no_subscriber_are_dropped(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as publisher:
        await publisher.publish("nobody/listens", b"lost", qos=1)  # still PUBACKed
        async with client(broker.port) as late:
            await late.subscribe("nobody/#", qos=1)
            await publisher.publish("nobody/listens", b"kept", qos=1)
            assert payloads(await next_messages(late, 1)) == [b"kept"]


async def test_shared_message_unacked_by_a_vanished_member_goes_to_another(
        broker: EmbeddedBroker) -> None:
    topic = "$share/center/tx/#"
    async with raw_session(broker.port, Connect("member-a")) as member_a:
        await member_a.send(Subscribe(1, (SubscriptionRequest(topic, qos=1),)))
        assert await member_a.receive() == SubAck(1, (1,))
        async with client(broker.port, "member-b") as member_b:
            await member_b.subscribe(topic, qos=1)
            async with client(broker.port) as publisher:
                await publisher.publish("tx/T1", b"first", qos=1)  # round robin: member-a
                assert isinstance(await member_a.receive(), Publish)
                member_a.abort()  # no PUBACK, clean session: it ends with the connection
                assert payloads(await next_messages(member_b, 1)) == [b"first"]
