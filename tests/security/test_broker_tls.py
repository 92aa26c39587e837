"""Broker TLS and mutual TLS, through the gateway's own MQTT client factory.

A private mosquitto listens on loopback with TLS only (1.2 at least),
requires a client certificate signed by the test CA, and has no plain
listener (tls_broker.py; the PKI comes from certs.py). The gateway connects
with `new_client(MqttConfig(tls_ca=..., tls_cert=..., tls_key=...))`, the
factory `OutboxForwarder` calls for every connection attempt.

Refusals that happen after the client's side of the handshake (TLS 1.3
client-certificate checks, plain TCP) reach aiomqtt as a connection closed
before CONNACK, which it reports only as the connect timing out; the raw
probes in `first_reply` show the broker's actual reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from posgw.drivers.backoff import Backoff
from posgw.drivers.mqtt import MqttConfig, new_client
from posgw.gateway.forward import OutboxForwarder
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from posgw.gateway.store import GroupCommitter, Store
from posgw.protocols.canonical_json import canonical_json, without_signature
from posgw.protocols.contract import tx_topic
from tests.security.certs import BrokerPki, Identity, make_pki
from tests.security.tls_broker import CONNACK_TYPE, client_tls, first_reply, tls_mosquitto
from tests.store.rows import ledger, outbox

BRANCH, TERMINAL = "B001", "T0001"
TOPIC = tx_topic("pos/v1", BRANCH, TERMINAL)
TIMEOUT_S = 10.0
#: How long a refused connect may take to fail: aiomqtt waits this long for
#: a CONNACK that never comes (see the module docstring).
REFUSAL_TIMEOUT_S = 1.5
TLS_VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> BrokerPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def port(tmp_path: Path, pki: BrokerPki) -> Iterator[int]:
    with tls_mosquitto(tmp_path, pki) as listening:
        yield listening


@pytest.fixture
def keys(tmp_path: Path) -> GatewayKeys:
    return load_keys(generate_keys(tmp_path / "keys").parent)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'gateway.db'}") as opened:
        yield opened


def settings(port: int, ca: Path | None, identity: Identity | None) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=port,
                      tls_ca=str(ca) if ca else None,
                      tls_cert=str(identity.cert) if identity else None,
                      tls_key=str(identity.key) if identity else None)


def client(config: MqttConfig, client_id: str) -> aiomqtt.Client:
    return new_client(config, client_id=client_id, will=None, max_inflight=16,
                      timeout_s=TIMEOUT_S)


async def connect_once(config: MqttConfig) -> None:
    async with asyncio.timeout(REFUSAL_TIMEOUT_S), client(config, "posgw-tls-probe"):
        pass


def forwarder(store: Store, keys: GatewayKeys, config: MqttConfig) -> OutboxForwarder:
    return OutboxForwarder(store, config, keys.signer, branch_id=BRANCH,
                           gateway_id="gw-b001-1", backoff=Backoff(base=0.05, cap=0.2),
                           connect_timeout_s=REFUSAL_TIMEOUT_S)


async def commit_one_event(store: Store) -> None:
    async with GroupCommitter(store) as committer:
        await committer.commit(ledger(0, terminal=TERMINAL),
                               outbox(0, terminal=TERMINAL, topic=TOPIC))


@contextlib.asynccontextmanager
async def running(body: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as group:
        task = group.create_task(body)
        try:
            yield
        finally:
            task.cancel()


async def first_message(subscriber: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(TIMEOUT_S):
        async for message in subscriber.messages:
            return message
    raise AssertionError("the subscription ended without a message")


async def wait_until_outbox_empty(store: Store) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        while store.outbox_stats().depth:
            await asyncio.sleep(0.02)  # polling the table with a deadline


def assert_signed_by(keys: GatewayKeys, payload: dict[str, object]) -> None:
    public = load_pem_public_key(keys.public_key_pem)
    assert isinstance(public, Ed25519PublicKey)
    public.verify(base64.b64decode(str(payload["signature"])),
                  canonical_json(without_signature(payload)))


async def test_forwarder_with_the_ca_and_a_valid_client_cert_delivers_over_tls(
        port: int, pki: BrokerPki, store: Store, keys: GatewayKeys) -> None:
    config = settings(port, pki.ca, pki.client)
    await commit_one_event(store)
    async with client(config, "tls-subscriber") as subscriber:
        await subscriber.subscribe(TOPIC, qos=1)
        gateway = forwarder(store, keys, config)
        async with running(gateway.run()):
            message = await first_message(subscriber)
            await wait_until_outbox_empty(store)  # the PUBACK came back over TLS
    assert isinstance(message.payload, bytes)
    payload = json.loads(message.payload)
    assert payload["event_id"] == f"ev-{TERMINAL}-0"
    assert_signed_by(keys, payload)
    assert gateway.connections == 1


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_a_valid_client_cert_gets_a_connack(port: int, pki: BrokerPki,
                                            version: ssl.TLSVersion) -> None:
    """The control for the raw refusal probes below: the same probe, accepted."""
    reply = first_reply(port, client_tls(pki.ca, pki.client, version))
    assert reply[:1] == bytes([CONNACK_TYPE])


async def test_a_client_pinning_an_unrelated_ca_refuses_the_broker(
        port: int, pki: BrokerPki) -> None:
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        await connect_once(settings(port, pki.other_ca, pki.client))


async def test_forwarder_pinning_an_unrelated_ca_keeps_the_event_pending(
        port: int, pki: BrokerPki, store: Store, keys: GatewayKeys,
        caplog: pytest.LogCaptureFixture) -> None:
    await commit_one_event(store)
    gateway = forwarder(store, keys, settings(port, pki.other_ca, pki.client))
    caplog.set_level(logging.WARNING, logger="posgw.gateway.forward.forwarder")
    async with running(gateway.run()), asyncio.timeout(TIMEOUT_S):
        while "CERTIFICATE_VERIFY_FAILED" not in caplog.text:
            await asyncio.sleep(0.02)  # polling the captured log with a deadline
    assert not gateway.connected.is_set() and gateway.connections == 0
    assert store.outbox_stats().depth == 1


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_the_broker_refuses_an_expired_client_certificate(
        port: int, pki: BrokerPki, version: ssl.TLSVersion) -> None:
    with pytest.raises(ssl.SSLError, match="ALERT_CERTIFICATE_EXPIRED"):
        first_reply(port, client_tls(pki.ca, pki.expired_client, version), send_connect=False)


async def test_the_gateway_client_with_an_expired_certificate_never_connects(
        port: int, pki: BrokerPki) -> None:
    with pytest.raises((aiomqtt.MqttError, TimeoutError)):
        await connect_once(settings(port, pki.ca, pki.expired_client))


@pytest.mark.parametrize(("version", "alert"), [
    (ssl.TLSVersion.TLSv1_2, "ALERT_HANDSHAKE_FAILURE"),
    (ssl.TLSVersion.TLSv1_3, "ALERT_CERTIFICATE_REQUIRED"),
])
def test_the_broker_refuses_a_tls_client_without_a_certificate(
        port: int, pki: BrokerPki, version: ssl.TLSVersion, alert: str) -> None:
    with pytest.raises(ssl.SSLError, match=alert):
        first_reply(port, client_tls(pki.ca, None, version), send_connect=False)


async def test_the_gateway_client_without_a_certificate_never_connects(
        port: int, pki: BrokerPki) -> None:
    with pytest.raises((aiomqtt.MqttError, TimeoutError)):
        await connect_once(settings(port, pki.ca, None))


async def test_plain_mqtt_to_the_tls_port_gets_no_connack(port: int) -> None:
    try:
        reply = first_reply(port, None)
    except ConnectionResetError:
        reply = b""
    assert reply == b""  # the broker hung up: it read our CONNECT as a bad TLS record
    with pytest.raises((aiomqtt.MqttError, TimeoutError)):
        await connect_once(settings(port, None, None))
