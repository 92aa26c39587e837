"""Test brokers: a private mosquitto on a free loopback port.

Tests that stop and restart the broker get their own process so they never
disturb the shared one on 1883. When mosquitto is not installed the tests
that need a broker are skipped with that reason (the in-process Python
broker fallback of `posgw demo` is not part of this helper yet).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
START_DEADLINE_S = 10.0


def mosquitto_path() -> str | None:
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class PrivateMosquitto:
    """A mosquitto bound to 127.0.0.1:`port`, restartable on the same port."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        binary = mosquitto_path()
        if binary is None:
            pytest.skip("mosquitto is not installed")
        self.binary = binary
        self.port = free_port()
        self.config = workdir / "mosquitto.conf"
        # persistent: sessions and queued QoS 1 messages survive a restart, so a
        # test subscriber misses nothing while the broker is down.
        persistence = (f"persistence true\npersistence_location {workdir}/\n"
                       if persistent else "persistence false\n")
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{persistence}"
            "max_queued_messages 100000\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_DEADLINE_S
        while not port_accepts(self.port):  # poll with a deadline, no fixed sleep
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


SHARED_BROKER_PORT = 1883


def shared_broker_port() -> int:
    """The system mosquitto on 1883, for tests that never stop the broker."""
    if not port_accepts(SHARED_BROKER_PORT):
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    return SHARED_BROKER_PORT


@contextmanager
def private_mosquitto(workdir: Path, *, persistent: bool = False
                      ) -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto(workdir, persistent=persistent)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
