"""A misbehaving client loses its own connection; everyone else carries on."""

from __future__ import annotations

import pytest

from posgw.sandbox.mqtt_broker import BrokerConfig, EmbeddedBroker
from posgw.sandbox.mqtt_broker.packets import MQTT_311, ConnAck, Connect, Disconnect, Publish, Will
from posgw.sandbox.mqtt_broker.wire import Reason
from tests.mqtt_broker.clients import RawClient, client, next_messages, payloads, raw_session


async def assert_broker_still_serves(broker: EmbeddedBroker) -> None:
    async with client(broker.port) as subscriber, client(broker.port) as publisher:
        await subscriber.subscribe("health", qos=1)
        await publisher.publish("health", b"ok", qos=1)
        assert payloads(await next_messages(subscriber, 1)) == [b"ok"]


@pytest.mark.parametrize("garbage", [
    bytes.fromhex("ff ff ff ff ff"),            # reserved type 15 + a 5-byte length
    bytes.fromhex("00 00"),                     # reserved type 0
    bytes.fromhex("10 03 00 01 4d"),            # CONNECT cut inside its protocol name
    bytes.fromhex("10 0c 0004 4d515454 05 01 003c 0000"),  # CONNECT reserved flag set
])
async def test_garbage_closes_only_that_connection(broker: EmbeddedBroker,
                                                   garbage: bytes) -> None:
    async with client(broker.port) as bystander:
        raw = await RawClient.open(broker.port)
        await raw.send_bytes(garbage)
        assert await raw.closed_by_broker() == []
        await bystander.subscribe("still/alive", qos=1)
    await assert_broker_still_serves(broker)


async def test_packet_before_connect_closes_the_connection(broker: EmbeddedBroker) -> None:
    raw = await RawClient.open(broker.port)
    await raw.send(Publish("t", b"early"))
    assert await raw.closed_by_broker() == []


async def test_unsupported_protocol_level_gets_connack_0x01(broker: EmbeddedBroker) -> None:
    raw = await RawClient.open(broker.port, MQTT_311)
    # 10: CONNECT | length 13 | 0004 "MQTT" | level 6 | clean | keepalive 60 | 0001 "c"
    await raw.send_bytes(bytes.fromhex("10 0d 0004 4d515454 06 02 003c 0001 63"))
    assert await raw.closed_by_broker() == [ConnAck(reason_code=0x01)]


async def test_wildcard_in_a_publish_topic_disconnects_with_0x90(
        broker: EmbeddedBroker) -> None:
    async with raw_session(broker.port, Connect("wild")) as raw:
        await raw.send(Publish("a/+", b"x", qos=1, packet_id=1))
        assert await raw.closed_by_broker() == [Disconnect(Reason.TOPIC_NAME_INVALID)]
    await assert_broker_still_serves(broker)


async def test_qos2_publish_from_mqtt5_client_disconnects_with_0x9b(
        broker: EmbeddedBroker) -> None:
    async with raw_session(broker.port, Connect("greedy")) as raw:
        await raw.send(Publish("t", b"x", qos=2, packet_id=1))
        assert await raw.closed_by_broker() == [Disconnect(Reason.QOS_NOT_SUPPORTED)]


async def test_oversized_packet_disconnects_with_0x95() -> None:
    async with EmbeddedBroker(config=BrokerConfig(max_packet_size=1024)) as broker:
        async with raw_session(broker.port, Connect("big")) as raw:
            await raw.send(Publish("t", b"x" * 2048))
            assert await raw.closed_by_broker() == [Disconnect(Reason.PACKET_TOO_LARGE)]
        await assert_broker_still_serves(broker)


async def test_second_connect_is_a_protocol_error(broker: EmbeddedBroker) -> None:
    async with raw_session(broker.port, Connect("twice")) as raw:
        await raw.send(Connect("twice"))
        assert await raw.closed_by_broker() == [Disconnect(Reason.PROTOCOL_ERROR)]


async def test_empty_client_id_gets_an_assigned_one(broker: EmbeddedBroker) -> None:
    async with raw_session(broker.port, Connect("")) as raw:
        assert raw.connack is not None
        assigned = dict(raw.connack.properties).get(0x12)  # Assigned Client Identifier
        assert isinstance(assigned, str) and assigned in broker.core.sessions


async def test_qos2_publish_from_mqtt311_client_closes_its_connection(
        broker: EmbeddedBroker) -> None:
    async with raw_session(broker.port, Connect("old-greedy", MQTT_311)) as raw:
        await raw.send(Publish("t", b"x", qos=2, packet_id=1))
        assert await raw.closed_by_broker() == []  # 3.1.1 has no DISCONNECT from the server


async def test_qos2_will_from_mqtt5_client_is_refused_with_0x9b(broker: EmbeddedBroker) -> None:
    raw, connack = await RawClient.connected(broker.port, Connect(
        "will-qos2", will=Will("status", b"gone", qos=2)))
    assert connack.reason_code == Reason.QOS_NOT_SUPPORTED
    assert await raw.closed_by_broker() == []
