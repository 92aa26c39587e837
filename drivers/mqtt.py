"""The one MQTT connection config and client factory, for gateway and center.

aiomqtt does not reconnect, and a Client reused after a failed or timed-out
connect can be unusable (empicano/aiomqtt#269, #288, #334): every caller
builds a fresh client with `new_client` for each connection attempt, inside
its one reconnect loop with `drivers.backoff.Backoff`.

Two things aiomqtt does not expose, and why we need them:

* **A persistent session from the first connect.** aiomqtt's default
  `clean_start` is "first connect only", which would throw away, at every
  process start, what the broker queued while we were away; `persistent`
  passes clean_start=False with a Session Expiry Interval.
* **Manual PUBACK.** paho acknowledges a QoS 1 message as soon as it has
  handed it to aiomqtt's in-memory queue; a crash before the center's insert
  would lose a message the broker considers delivered. paho (>= 2.0) can
  leave the PUBACK to the application (`manual_ack`,
  eclipse-paho/paho.mqtt.python#753); aiomqtt has no option for it yet
  (empicano/aiomqtt#345), so it is switched on the wrapped paho client.

And one thing it loses: aiomqtt waits for CONNACK, SUBACK and PUBACK with
`asyncio.wait_for`, which on Python 3.11 drops a cancellation that comes in
the same loop step as the answer (python/cpython#86296, fixed in 3.12). A
loop that goes on from there never stops; the clients `new_client` makes
raise such a cancellation again (`CancellableClient`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Self, TypeVar

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from posgw.drivers.mqtt_config import (
    DEFAULT_KEEPALIVE_S,
    DEFAULT_SESSION_EXPIRY_S,
    DEFAULT_TIMEOUT_S,
    MAX_SESSION_EXPIRY_S,
    MqttConfig,
)

__all__ = ["DEFAULT_KEEPALIVE_S", "DEFAULT_SESSION_EXPIRY_S", "MAX_SESSION_EXPIRY_S",
           "QOS_AT_LEAST_ONCE", "CancellableClient", "MqttConfig", "ack", "cancellable",
           "new_client"]

QOS_AT_LEAST_ONCE = 1
T = TypeVar("T")


def new_client(config: MqttConfig, *, client_id: str | None = None, persistent: bool = False,
               manual_ack: bool = False, will: aiomqtt.Will | None = None,
               max_inflight: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
               logger: logging.Logger | None = None,
               receive_maximum: int | None = None) -> aiomqtt.Client:
    """A client for one connection attempt (MQTT 5).

    The config's `client_id` wins over the `client_id` given here (the
    caller's default). `persistent` needs a client id (the session is found
    by it); `manual_ack` means every QoS 1 message must be passed to `ack()`.
    `receive_maximum` (MQTT 5 §3.1.2.11.3): how many unacknowledged QoS 1
    messages the broker may send at once; a batching subscriber sets it
    above its batch size, or the broker would stop short of a full batch.
    """
    identifier = config.client_id or client_id
    if persistent and not identifier:
        raise ValueError("a persistent session needs a client_id")
    client = CancellableClient(
        config.host, config.port, identifier=identifier,
        username=config.username, password=config.password,
        protocol=aiomqtt.ProtocolVersion.V5, keepalive=config.keepalive, timeout=timeout_s,
        tls_params=_tls(config), will=will, max_inflight_messages=max_inflight,
        clean_start=not persistent,
        properties=_connect_properties(config.session_expiry_s if persistent else None,
                                       receive_maximum),
        logger=logger,
    )
    if manual_ack:
        # Before connecting: a resumed session delivers its queue right after CONNACK.
        client._client.manual_ack_set(True)
    return client


async def cancellable(call: Awaitable[T]) -> T:
    """Await an aiomqtt call; a cancellation it swallowed is raised here.

    A cancel() that came during the call and still counts in the task's
    `cancelling()` was caught without being passed on: by `wait_for`. The
    count is compared, not tested for zero: on Python 3.11 a TaskGroup whose
    child failed while it was waiting for them leaves its parent's count
    raised for good (python/cpython#116720), and the forwarder reconnects
    from such a task after every lost connection.
    """
    task = asyncio.current_task()
    before = 0 if task is None else task.cancelling()
    result = await call
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
    return result


class CancellableClient(aiomqtt.Client):
    """aiomqtt's client whose waits for CONNACK, SUBACK and PUBACK pass a
    cancellation on (`cancellable`)."""

    async def __aenter__(self) -> Self:
        await cancellable(super().__aenter__())
        return self

    async def subscribe(self, /, *args: Any, **kwargs: Any) -> tuple[int, ...] | list[Any]:
        return await cancellable(super().subscribe(*args, **kwargs))

    async def publish(self, /, *args: Any, **kwargs: Any) -> None:
        await cancellable(super().publish(*args, **kwargs))


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """PUBACK `message` now (manual_ack clients). On a dropped connection this
    is a no-op and the broker redelivers the message to the session."""
    client._client.ack(message.mid, message.qos)


def queued(client: aiomqtt.Client, limit: int) -> list[aiomqtt.Message]:
    """Up to `limit` messages already received and waiting, without waiting
    for more (aiomqtt's iterator makes a task per message; a batch drains
    its queue directly)."""
    taken: list[aiomqtt.Message] = []
    while len(taken) < limit:
        try:
            taken.append(client._queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return taken


def _connect_properties(expiry_s: int | None, receive_maximum: int | None) -> Properties | None:
    if expiry_s is None and receive_maximum is None:
        return None
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: untyped
    if expiry_s is not None:
        properties.SessionExpiryInterval = expiry_s
    if receive_maximum is not None:
        properties.ReceiveMaximum = receive_maximum
    return properties


def _tls(config: MqttConfig) -> aiomqtt.TLSParameters | None:
    if not (config.tls_ca or config.tls_cert):
        return None
    return aiomqtt.TLSParameters(ca_certs=config.tls_ca, certfile=config.tls_cert,
                                 keyfile=config.tls_key)
