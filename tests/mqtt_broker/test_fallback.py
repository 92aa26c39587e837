"""tests/brokers.py falls back to the embedded broker when mosquitto is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers import BROKER_ENV, SHARED_BROKER_PORT, private_mosquitto, shared_broker_port
from tests.mqtt_broker.test_runners import round_trip


async def test_shared_broker_is_embedded_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROKER_ENV, "embedded")
    port = shared_broker_port()
    assert port != SHARED_BROKER_PORT
    assert shared_broker_port() == port  # one broker per test process
    assert await round_trip(port) == [b"pong"]


async def test_private_broker_process_restarts_on_its_port(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BROKER_ENV, "embedded")
    with private_mosquitto(tmp_path) as broker:
        assert broker.kind == "embedded"
        assert broker.command[1:3] == ["-m", "posgw.sandbox.mqtt_broker"]
        assert await round_trip(broker.port) == [b"pong"]
        broker.stop()
        broker.start()
        assert await round_trip(broker.port) == [b"pong"]


def test_persistent_private_broker_needs_mosquitto(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv(BROKER_ENV, "embedded")
    with pytest.raises(pytest.skip.Exception, match="needs mosquitto"), \
            private_mosquitto(tmp_path, persistent=True):
        pass
