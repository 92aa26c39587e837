"""Test brokers: the shared one on 1883, and private ones on a free loopback port.

Tests that stop and restart the broker get their own process
(`posgw.sandbox.mosquitto.PrivateBroker`) so they never disturb the shared
one on 1883. What is pytest's is here: the choice of broker, the skips.

Without mosquitto, the tests still run, against the embedded Python broker
(`sandbox.mqtt_broker`, the one `posgw demo` falls back to):

* `shared_broker_port()` uses whatever listens on 127.0.0.1:1883; when
  nothing does, it starts the embedded broker once per test process (each
  xdist worker has its own) in a thread, on a free port.
* `private_mosquitto()` runs `python -m posgw.sandbox.mqtt_broker --port N`
  when mosquitto is not installed. That broker keeps sessions in memory
  only, so `persistent=True` (sessions that survive a restart) still needs
  mosquitto and is skipped without it.

Set POSGW_TEST_BROKER=embedded to force the fallback even where mosquitto
is installed and running, e.g. to prove it:

    POSGW_TEST_BROKER=embedded .venv/bin/pytest tests/forward tests/center
"""

from __future__ import annotations

import atexit
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from posgw.sandbox import mosquitto
from posgw.sandbox.mosquitto import BrokerUnavailable, PrivateBroker
from posgw.sandbox.mqtt_broker import BrokerConfig, BrokerThread
from posgw.sandbox.ports import port_accepts

BROKER_ENV = "POSGW_TEST_BROKER"  # "embedded": never use mosquitto
MAX_QUEUED = 100_000  # one bound for every test broker, mosquitto or embedded
SHARED_BROKER_PORT = 1883


def embedded_forced() -> bool:
    return os.environ.get(BROKER_ENV, "").strip().lower() == "embedded"


def mosquitto_path() -> str | None:
    """mosquitto's path, or None when it is not installed or the fallback is forced."""
    return None if embedded_forced() else mosquitto.mosquitto_path()


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


def private_broker(workdir: Path, *, persistent: bool = False, listener_options: str = "",
                   config: Callable[[int], str] | None = None) -> PrivateBroker:
    """A private broker, not started; the test is skipped when it needs a missing mosquitto.
    `config`: the whole mosquitto.conf for the chosen port (PrivateBroker)."""
    try:
        return PrivateBroker(workdir, binary=mosquitto_path(), persistent=persistent,
                             max_queued=MAX_QUEUED, listener_options=listener_options,
                             config=config)
    except BrokerUnavailable as exc:
        pytest.skip(f"{exc} (or {BROKER_ENV}=embedded is set)")


@contextmanager
def private_mosquitto(workdir: Path, *, persistent: bool = False) -> Iterator[PrivateBroker]:
    """A private broker running for the block (stopped with SIGTERM at its end)."""
    with private_broker(workdir, persistent=persistent) as broker:
        yield broker
