"""deploy/mosquitto/ as shipped: who may connect, as whom, and to which topics.

Finding 4 (issue 17): anyone who knew the center's client id took its
session and acknowledged 298 `tx` messages the center never stored. The
shipped broker admits no anonymous client, speaks TLS only, makes every
client's id its user name, and lets a gateway publish and read only its
own branch's topics (tests/security/deployed_broker.py runs it; the
password file and ACL come from center/broker_access.py, what `posgw
center enroll` prints). Absence is shown without sleeping: a forbidden
message is followed by an allowed one from the same client, and only the
allowed one arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from posgw.center.broker_access import center_acl, gateway_acl
from tests.security.certs import BrokerPki, make_pki
from tests.security.deployed_broker import (
    CENTER,
    PREFIX,
    SHIPPED_ACL,
    DeployedBroker,
    deployed_broker,
)
from tests.security.tls_broker import first_reply

TIMEOUT_S = 10.0
SESSION_EXPIRY_S = 300


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> BrokerPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: BrokerPki) -> Iterator[DeployedBroker]:
    with deployed_broker(tmp_path, pki) as running:
        yield running


def tls(broker: DeployedBroker) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=broker.ca)


def client(broker: DeployedBroker, user: str | None, *, password: str | None = None,
           identifier: str | None = None, persistent: bool = False) -> aiomqtt.Client:
    """A client over TLS as `user` (its own password unless one is given)."""
    if user is not None and password is None:
        password = broker.passwords[user]
    properties = None
    if persistent:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
    return aiomqtt.Client("127.0.0.1", broker.port, identifier=identifier, username=user,
                          password=password, protocol=aiomqtt.ProtocolVersion.V5,
                          tls_context=tls(broker), timeout=TIMEOUT_S,
                          clean_start=not persistent, properties=properties)


@asynccontextmanager
async def connected(made: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    async with made:
        yield made


async def attempt_publish(broker: DeployedBroker, user: str, topic: str) -> None:
    """`user` publishes on `topic` on a connection of its own: mosquitto
    2.0 refuses a forbidden QoS 1 publish and the connection does not
    survive it, so each attempt gets its own (and a later connection's
    publish is routed after it)."""
    with contextlib.suppress(aiomqtt.MqttError):
        async with connected(client(broker, user)) as publisher:
            await publisher.publish(topic, b"{}", qos=1)


async def next_topic(subscriber: aiomqtt.Client) -> str:
    async with asyncio.timeout(TIMEOUT_S):
        async for message in subscriber.messages:
            return str(message.topic)
    raise AssertionError("the subscription ended")


def test_the_shipped_acl_is_what_enroll_prints_for_the_center_and_b001() -> None:
    rules = [line for line in SHIPPED_ACL.read_text().splitlines()
             if line and not line.startswith("#")]
    generated = (center_acl(PREFIX, CENTER) + gateway_acl(PREFIX, "B001", "gw-b001-1"))
    assert rules == generated.splitlines()


async def test_an_anonymous_client_is_refused(broker: DeployedBroker) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, None):
            pass


async def test_a_wrong_password_is_refused(broker: DeployedBroker) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, "gw-b001-1", password="guessed"):
            pass


def test_plain_mqtt_on_the_tls_port_gets_no_connack(broker: DeployedBroker) -> None:
    try:
        reply = first_reply(broker.port, None)
    except ConnectionResetError:
        reply = b""  # refused before it read our CONNECT
    assert reply == b""


async def test_a_gateway_connects_over_tls_and_reaches_the_center(
        broker: DeployedBroker) -> None:
    async with connected(client(broker, CENTER)) as center, \
            connected(client(broker, "gw-b001-1")) as gateway:
        await center.subscribe(f"{PREFIX}/+/+/tx", qos=1)
        await gateway.publish(f"{PREFIX}/B001/T0001/tx", b"{}", qos=1)
        assert await next_topic(center) == f"{PREFIX}/B001/T0001/tx"


async def test_a_gateway_cannot_publish_for_another_branch(broker: DeployedBroker) -> None:
    async with connected(client(broker, CENTER)) as center:
        await center.subscribe(f"{PREFIX}/#", qos=1)
        for topic in (f"{PREFIX}/B001/T0001/tx", f"{PREFIX}/B001/cases",
                      f"{PREFIX}/B001/cmd", f"{PREFIX}/B001/gw-b001-1/confirm"):
            await attempt_publish(broker, "gw-b002-1", topic)
        await attempt_publish(broker, "gw-b002-1", f"{PREFIX}/B002/T0001/tx")  # its own
        assert await next_topic(center) == f"{PREFIX}/B002/T0001/tx"


async def test_a_gateway_cannot_read_another_branch_commands_or_confirmations(
        broker: DeployedBroker) -> None:
    async with connected(client(broker, CENTER)) as center, \
            connected(client(broker, "gw-b002-1")) as b002:
        for topic_filter in (f"{PREFIX}/B001/cmd", f"{PREFIX}/B001/gw-b001-1/confirm",
                             f"{PREFIX}/+/+/tx", f"{PREFIX}/B002/cmd"):
            await b002.subscribe(topic_filter, qos=1)
        await center.publish(f"{PREFIX}/B001/cmd", b"{}", qos=1)
        await center.publish(f"{PREFIX}/B001/gw-b001-1/confirm", b"{}", qos=1)
        await center.publish(f"{PREFIX}/B002/cmd", b"{}", qos=1)  # its own: delivered
        assert await next_topic(b002) == f"{PREFIX}/B002/cmd"


async def test_the_center_session_cannot_be_taken_without_the_center_password(
        broker: DeployedBroker) -> None:
    """The center's session queues what arrives while it is away; a client
    with its client id but not its password gets none of it, and the center
    gets all of it when it comes back."""
    async with connected(client(broker, CENTER, identifier=CENTER, persistent=True)) as center:
        await center.subscribe(f"{PREFIX}/+/+/tx", qos=1)
    async with connected(client(broker, "gw-b001-1")) as gateway:
        for n in range(3):
            await gateway.publish(f"{PREFIX}/B001/T000{n}/tx", b"{}", qos=1)
    with pytest.raises(aiomqtt.MqttError):  # the center's user name, a guessed password
        async with client(broker, CENTER, password="guessed", identifier=CENTER,
                          persistent=True):
            pass
    # Another gateway's credentials with the center's id: its id becomes its
    # own user name, so it resumes nothing of the center's session, and the
    # ACL refuses it every branch's tx.
    async with connected(client(broker, "gw-b002-1", identifier=CENTER,
                                persistent=True)) as thief:
        await thief.subscribe(f"{PREFIX}/+/+/tx", qos=1)
        await thief.subscribe(f"{PREFIX}/B002/cmd", qos=1)
        await thief.publish(f"{PREFIX}/B002/T0001/tx", b"{}", qos=1)
    async with connected(client(broker, CENTER, identifier=CENTER, persistent=True)) as center:
        received = [await next_topic(center) for _ in range(4)]
    assert received[:3] == [f"{PREFIX}/B001/T000{n}/tx" for n in range(3)]
    assert received[3] == f"{PREFIX}/B002/T0001/tx"  # the thief's own publish, nothing more


async def test_an_anonymous_client_with_the_center_id_is_refused(
        broker: DeployedBroker) -> None:
    """Refused at CONNECT, so it reads nothing. (mosquitto 2.0.11 still drops
    the center's queued messages when this happens: the gateways publish
    them again, as nothing of them was confirmed; docs/security.md.)"""
    async with connected(client(broker, CENTER, identifier=CENTER, persistent=True)) as center:
        await center.subscribe(f"{PREFIX}/+/+/tx", qos=1)
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        async with client(broker, None, identifier=CENTER, persistent=True):
            pass
