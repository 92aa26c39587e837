"""The broker in a thread (sync callers) and as its own process (restart tests)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

from posgw.sandbox.mqtt_broker import BrokerThread
from tests.mqtt_broker.clients import client, next_messages, payloads

START_TIMEOUT_S = 10


async def round_trip(port: int) -> list[bytes]:
    async with client(port) as subscriber, client(port) as publisher:
        await subscriber.subscribe("ping", qos=1)
        await publisher.publish("ping", b"pong", qos=1)
        return payloads(await next_messages(subscriber, 1))


def test_broker_thread_serves_sync_callers() -> None:
    with BrokerThread() as broker:
        assert broker.port > 0
        assert asyncio.run(round_trip(broker.port)) == [b"pong"]


def test_broker_process_prints_its_port_and_stops_on_sigterm() -> None:
    process = subprocess.Popen([sys.executable, "-m", "posgw.sandbox.mqtt_broker", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the broker listens
        assert line.startswith("listening on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        assert asyncio.run(round_trip(port)) == [b"pong"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=START_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
