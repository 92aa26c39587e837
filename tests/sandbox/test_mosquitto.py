"""The one private-broker launcher: ports, readiness, restart, persistence, stop and kill.

Real processes on loopback: mosquitto where installed (skipped otherwise),
the embedded broker as its own process, and the demo's in-process fallback.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from posgw.center.broker_access import center_acl, gateway_acl
from posgw.sandbox.mosquitto import BrokerAccount, BrokerUnavailable, PrivateBroker, demo_broker
from posgw.sandbox.ports import free_port, port_accepts
from posgw.sandbox.processes import SetupError, wait_until
from tests.brokers import mosquitto_path as installed_mosquitto
from tests.brokers import private_broker
from tests.mqtt_broker.clients import client, next_messages, payloads
from tests.mqtt_broker.test_runners import round_trip

SESSION_EXPIRY_S = 3600


def test_free_port_accepts_nothing_until_someone_listens() -> None:
    port = free_port()
    assert not port_accepts(port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert port_accepts(port)


def test_wait_until_fails_fast_when_the_watched_process_exits() -> None:
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(SetupError, match="the process exited with 3"):
        wait_until(lambda: False, "nothing", deadline_s=60, process=exited)


def test_wait_until_fails_at_its_deadline() -> None:
    with pytest.raises(SetupError, match=r"nothing: not within 0\.1 s"):
        wait_until(lambda: False, "nothing", deadline_s=0.1)


def test_the_embedded_broker_process_has_no_persistence(tmp_path: Path) -> None:
    with pytest.raises(BrokerUnavailable, match="needs mosquitto"):
        PrivateBroker(tmp_path, binary=None, persistent=True)


async def test_the_embedded_broker_process_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    broker = PrivateBroker(tmp_path, binary=None)
    with broker:
        assert broker.running and port_accepts(broker.port)
        assert await round_trip(broker.port) == [b"pong"]
    assert not broker.running and not port_accepts(broker.port)
    assert "listening on 127.0.0.1:" in broker.log.read_text()  # its output is kept


async def test_persistent_broker_keeps_queued_messages_across_a_sigterm_restart(
        tmp_path: Path) -> None:
    broker = private_broker(tmp_path, persistent=True)  # skipped without mosquitto
    with broker:
        async with client(broker.port, "keeper", session_expiry=SESSION_EXPIRY_S) as keeper:
            await keeper.subscribe("kept", qos=1)
        async with client(broker.port) as publisher:
            await publisher.publish("kept", b"while away", qos=1)
        port = broker.port
        broker.stop()
        assert broker.persistence_file is not None and broker.persistence_file.exists()
        broker.start()
        assert broker.port == port
        async with client(broker.port, "keeper", session_expiry=SESSION_EXPIRY_S) as keeper:
            assert payloads(await next_messages(keeper, 1)) == [b"while away"]


def test_kill_saves_nothing(tmp_path: Path) -> None:
    broker = private_broker(tmp_path, persistent=True)
    broker.start()
    broker.kill()
    assert not broker.running and not port_accepts(broker.port)
    assert broker.persistence_file is not None and not broker.persistence_file.exists()


def test_a_broker_that_cannot_start_says_why_from_its_log(tmp_path: Path) -> None:
    # Refused while reading its configuration, before it opens the port.
    broker = private_broker(tmp_path, listener_options="no_such_option true\n")
    with pytest.raises(SetupError) as failed:
        broker.start()
    assert "exited" in str(failed.value) and "no_such_option" in str(failed.value)
    assert not broker.running


async def test_demo_broker_falls_back_to_the_embedded_one_in_process(tmp_path: Path) -> None:
    async with demo_broker(tmp_path, "embedded") as broker:
        assert broker.kind == "embedded"
        assert await round_trip(broker.port) == [b"pong"]
    assert not port_accepts(broker.port)


async def test_demo_broker_with_accounts_admits_only_them_to_their_topics(
        tmp_path: Path) -> None:
    """What `posgw demo` runs when mosquitto is installed: the deployment's
    access rules, with accounts made by the code `posgw center enroll` uses."""
    if installed_mosquitto() is None:
        pytest.skip("needs mosquitto (the embedded broker has no access control)")
    accounts = [BrokerAccount("center-1", center_acl("pos/v1", "center-1")),
                BrokerAccount("gw-1", gateway_acl("pos/v1", "B001", "gw-1"))]
    async with demo_broker(tmp_path, "mosquitto", accounts) as broker:
        assert set(broker.passwords) == {"center-1", "gw-1"}
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", broker.port,
                                      protocol=aiomqtt.ProtocolVersion.V5):
                pass
        async with aiomqtt.Client("127.0.0.1", broker.port, username="center-1",
                                  password=broker.passwords["center-1"],
                                  protocol=aiomqtt.ProtocolVersion.V5) as center:
            await center.subscribe("pos/v1/+/+/tx", qos=1)
            async with aiomqtt.Client("127.0.0.1", broker.port, username="gw-1",
                                      password=broker.passwords["gw-1"],
                                      protocol=aiomqtt.ProtocolVersion.V5) as gateway:
                await gateway.publish("pos/v1/B001/T1/tx", b"{}", qos=1)
            async with asyncio.timeout(10):
                message = await anext(aiter(center.messages))
            assert str(message.topic) == "pos/v1/B001/T1/tx"
