"""Persistent sessions, redelivery, queue bounds and client-id takeover."""

from __future__ import annotations

import asyncio
import logging

import aiomqtt
import pytest

from posgw.sandbox.mqtt_broker import BrokerConfig, EmbeddedBroker
from posgw.sandbox.mqtt_broker.packets import (
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
    SubscriptionRequest,
)
from posgw.sandbox.mqtt_broker.wire import Prop, Reason
from tests.mqtt_broker.clients import RawClient, client, next_messages, payloads, raw_session

PERSISTENT = ((Prop.SESSION_EXPIRY, 600),)


async def test_persistent_session_queues_qos1_while_offline(broker: EmbeddedBroker) -> None:
    async with client(broker.port, "center-1", session_expiry=600) as subscriber:
        await subscriber.subscribe("tx/#", qos=1)
    async with client(broker.port) as publisher:
        for n in range(100):
            await publisher.publish(f"tx/T{n % 4}", f"{n}".encode(), qos=1)
    async with client(broker.port, "center-1", session_expiry=600) as subscriber:
        received = await next_messages(subscriber, 100)  # no new SUBSCRIBE needed
    assert payloads(received) == [f"{n}".encode() for n in range(100)]


async def test_clean_session_forgets_its_subscriptions(broker: EmbeddedBroker) -> None:
    async with client(broker.port, "forgetful") as subscriber:
        await subscriber.subscribe("tx/#", qos=1)
    async with client(broker.port) as publisher:
        await publisher.publish("tx/T1", b"missed", qos=1)
    async with raw_session(broker.port, Connect("forgetful", clean_start=False)) as again:
        assert again.connack is not None and not again.connack.session_present
        await again.send(PingReq())
        assert await again.receive() == PingResp()  # nothing was kept for it


async def test_session_ends_when_its_expiry_interval_passes(broker: EmbeddedBroker) -> None:
    async with client(broker.port, "short-lived", session_expiry=1) as subscriber:
        await subscriber.subscribe("tx/#", qos=1)
    assert "short-lived" in broker.core.sessions
    async with asyncio.timeout(5):
        while "short-lived" in broker.core.sessions:
            await asyncio.sleep(0.05)  # polling broker state with a deadline


async def test_unacked_message_is_sent_again_with_dup_on_reconnect(
        broker: EmbeddedBroker) -> None:
    connect = Connect("slow-ack", clean_start=False, properties=PERSISTENT)
    first, _ = await RawClient.connected(broker.port, connect)
    await first.send(Subscribe(1, (SubscriptionRequest("tx/#", qos=1),)))
    assert await first.receive() == SubAck(1, (1,))
    async with client(broker.port) as publisher:
        await publisher.publish("tx/T1", b"event-1", qos=1)
    original = await first.receive()
    assert isinstance(original, Publish) and not original.dup
    first.abort()  # gone without a PUBACK

    async with raw_session(broker.port, connect) as second:
        assert second.connack is not None and second.connack.session_present
        again = await second.receive()
        assert isinstance(again, Publish) and again.dup
        assert (again.packet_id, again.payload) == (original.packet_id, b"event-1")
        assert again.packet_id is not None
        await second.send(PubAck(again.packet_id))
    async with raw_session(broker.port, connect) as third:
        await third.send(PingReq())
        assert await third.receive() == PingResp()  # nothing left to redeliver


async def test_full_queue_drops_new_messages_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sandbox.mqtt_broker")
    async with EmbeddedBroker(config=BrokerConfig(max_queued=5)) as broker:
        async with client(broker.port, "bounded", session_expiry=600) as subscriber:
            await subscriber.subscribe("tx/#", qos=1)
        async with client(broker.port) as publisher:
            for n in range(12):
                await publisher.publish("tx/T1", f"{n}".encode(), qos=1)
        async with client(broker.port, "bounded", session_expiry=600) as subscriber:
            await subscriber.publish("tx/T1", b"after", qos=1)  # live, once the queue drains
            received = await next_messages(subscriber, 6)
        assert broker.core.sessions["bounded"].dropped == 7
    assert payloads(received) == [b"0", b"1", b"2", b"3", b"4", b"after"]
    warnings = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(warnings) == 1  # one per overflow episode, not one per message


async def test_second_connection_with_the_same_id_takes_over(broker: EmbeddedBroker) -> None:
    older = client(broker.port, "gw-1")
    async with older, client(broker.port, "gw-1") as newer:
        assert await reason_for_leaving(older) == Reason.SESSION_TAKEN_OVER
        await newer.subscribe("echo", qos=1)
        await newer.publish("echo", b"still here", qos=1)
        assert payloads(await next_messages(newer, 1)) == [b"still here"]


async def test_taken_over_mqtt5_client_is_told_why(broker: EmbeddedBroker) -> None:
    async with raw_session(broker.port, Connect("gw-2")) as older, client(broker.port, "gw-2"):
        assert await older.closed_by_broker() == [Disconnect(Reason.SESSION_TAKEN_OVER)]


async def test_takeover_resumes_a_persistent_session(broker: EmbeddedBroker) -> None:
    async with client(broker.port, "center-2", session_expiry=600) as older:
        await older.subscribe("tx/#", qos=1)
        async with (client(broker.port, "center-2", session_expiry=600) as newer,
                    client(broker.port) as publisher):
            assert await reason_for_leaving(older) == Reason.SESSION_TAKEN_OVER
            await publisher.publish("tx/T1", b"to the new one", qos=1)
            assert payloads(await next_messages(newer, 1)) == [b"to the new one"]


async def reason_for_leaving(mqtt: aiomqtt.Client) -> int:
    """The reason code of the broker's DISCONNECT, as paho reported it to aiomqtt."""
    with pytest.raises(aiomqtt.MqttCodeError) as ended:
        async with asyncio.timeout(5):
            await mqtt._disconnected  # aiomqtt's "connection ended" future
    code = ended.value.rc
    assert code is not None
    return code if isinstance(code, int) else int(code.value)  # paho ReasonCode or int
