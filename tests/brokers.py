"""Test brokers: the shared one on 1883, and private ones on a free loopback port.

Tests that stop and restart the broker get their own process so they never
disturb the shared one on 1883.

Without mosquitto, the tests still run, against the embedded Python broker
(`sandbox.mqtt_broker`, the one `posgw demo` falls back to):

* `shared_broker_port()` uses whatever listens on 127.0.0.1:1883; when
  nothing does, it starts the embedded broker once per test process (each
  xdist worker has its own) in a thread, on a free port.
* `PrivateMosquitto` runs `python -m posgw.sandbox.mqtt_broker --port N` when
  mosquitto is not installed. That broker keeps sessions in memory only, so
  `persistent=True` (sessions that survive a restart) still needs mosquitto
  and is skipped without it.

Set POSGW_TEST_BROKER=embedded to force the fallback even where mosquitto
is installed and running, e.g. to prove it:

    POSGW_TEST_BROKER=embedded .venv/bin/pytest tests/forward tests/center
"""

from __future__ import annotations

import atexit
import functools
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from posgw.sandbox.mqtt_broker import BrokerConfig, BrokerThread

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
START_DEADLINE_S = 10.0
BROKER_ENV = "POSGW_TEST_BROKER"  # "embedded": never use mosquitto
MAX_QUEUED = 100_000  # the same bound as the private mosquitto's max_queued_messages


def embedded_forced() -> bool:
    return os.environ.get(BROKER_ENV, "").strip().lower() == "embedded"


def mosquitto_path() -> str | None:
    if embedded_forced():
        return None
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
    """A broker bound to 127.0.0.1:`port`, restartable on the same port.

    mosquitto when installed, else the embedded broker as its own process.
    """

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.persistence_file: Path | None = None
        binary = mosquitto_path()
        if binary is None:
            if persistent:
                pytest.skip("needs mosquitto: the embedded broker fallback keeps sessions in "
                            "memory, so they cannot survive the restart this test makes")
            self.command = [sys.executable, "-m", "sandbox.mqtt_broker",
                            "--port", str(self.port), "--max-queued", str(MAX_QUEUED)]
            return
        self.config = workdir / "mosquitto.conf"
        # persistent: sessions and queued QoS 1 messages survive a restart, so a
        # test subscriber misses nothing while the broker is down.
        persistence = (f"persistence true\npersistence_location {workdir}/\n"
                       if persistent else "persistence false\n")
        self.persistence_file = workdir / "mosquitto.db" if persistent else None
        # Started as root, mosquitto drops to the user "mosquitto", which cannot
        # write its database into the test's private tmp dir: each restart then
        # silently forgot every session and queued message. Stay our own user.
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{persistence}"
            f"user {getpass.getuser()}\nmax_queued_messages {MAX_QUEUED}\n")
        self.command = [binary, "-c", str(self.config)]

    def start(self) -> None:
        self.process = subprocess.Popen(self.command,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_DEADLINE_S
        while not port_accepts(self.port):  # poll with a deadline, no fixed sleep
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.command[0]} did not start on port {self.port}")
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
        if self.persistence_file is not None and not self.persistence_file.exists():
            raise RuntimeError(f"mosquitto did not save {self.persistence_file}: "
                               "its sessions would not survive the restart")


SHARED_BROKER_PORT = 1883


def shared_broker_port() -> int:
    """The system mosquitto on 1883, else the embedded broker; for tests that never stop it."""
    if not embedded_forced() and port_accepts(SHARED_BROKER_PORT):
        return SHARED_BROKER_PORT
    return _embedded_broker().port


@functools.cache
def _embedded_broker() -> BrokerThread:
    """One embedded broker per test process, in its own thread, until the process exits."""
    broker = BrokerThread(config=BrokerConfig(max_queued=MAX_QUEUED))
    broker.start()
    atexit.register(broker.stop)
    return broker


@contextmanager
def private_mosquitto(workdir: Path, *, persistent: bool = False
                      ) -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto(workdir, persistent=persistent)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
