"""A stop that arrives together with the broker's answer is not lost.

aiomqtt waits for CONNACK, SUBACK and PUBACK with `asyncio.wait_for`; on
Python 3.11 a task cancelled in the same loop step as that answer arrives
gets the answer and loses the cancellation (python/cpython#86296). The
forwarder and the center's ingest would then go on into their message
loops and never stop: `posgw run` hung on SIGTERM when the signal came
while it was connecting. Here the cancellation is delivered from inside the
paho callback that resolves aiomqtt's future, which is exactly that step,
against the real shared mosquitto.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from posgw.center import ingest as center_ingest
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.drivers import mqtt as mqtt_driver
from posgw.drivers.backoff import Backoff
from posgw.drivers.mqtt import MqttConfig, cancellable
from posgw.gateway.forward import OutboxForwarder
from posgw.gateway.forward import forwarder as gateway_forwarder
from posgw.gateway.security import generate_keys, load_keys
from posgw.gateway.store import Store
from tests.brokers import shared_broker_port
from tests.center.events import verifier

STOP_DEADLINE_S = 10.0
#: The paho callbacks through which aiomqtt resolves what it waits for.
ANSWERS = ("on_connect", "on_subscribe", "on_publish")


class CancelAtAnswer:
    """A `new_client` that makes clients cancel `task` from inside the
    first `callback` paho calls, right after aiomqtt's own handler."""

    def __init__(self, callback: str) -> None:
        self.callback = callback
        self.task: asyncio.Task[Any] | None = None
        self.fired = False

    def new_client(self, *args: Any, **kwargs: Any) -> aiomqtt.Client:
        client = mqtt_driver.new_client(*args, **kwargs)
        paho = client._client
        aiomqtts: Callable[..., None] = getattr(paho, self.callback)

        def answered(*callback_args: Any) -> None:
            aiomqtts(*callback_args)  # resolves the future aiomqtt waits on
            if not self.fired and self.task is not None:
                self.fired = True
                self.task.cancel()

        setattr(paho, self.callback, answered)
        return client


async def stops(body: Coroutine[Any, Any, None], hook: CancelAtAnswer) -> bool:
    """Run `body` until `hook` cancels it; True if it then ended cancelled."""
    task = hook.task = asyncio.create_task(body)
    try:
        async with asyncio.timeout(STOP_DEADLINE_S):
            await asyncio.wait({task})
    except TimeoutError:
        task.cancel()  # a second cancel: the first one was lost
        await asyncio.wait({task})
        return False
    finally:
        assert hook.fired, f"the client never got to {hook.callback}"
    return task.cancelled()


@pytest.mark.parametrize("callback", ANSWERS)
async def test_the_forwarder_stops_when_cancelled_as_the_broker_answers(
        callback: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = CancelAtAnswer(callback)
    monkeypatch.setattr(gateway_forwarder, "new_client", hook.new_client)
    keys = load_keys(generate_keys(tmp_path / "keys").parent)
    branch = f"B{uuid.uuid4().hex[:8]}"
    with Store(f"sqlite:///{tmp_path / 'gateway.db'}") as store:
        forwarder = OutboxForwarder(store, MqttConfig(port=shared_broker_port()), keys.signer,
                                    branch_id=branch, gateway_id=f"gw-{branch}",
                                    backoff=Backoff(base=0.05, cap=0.2))
        forwarder.on_command = _ignore  # subscribes to its command topic too
        assert await stops(forwarder.run(), hook), "the forwarder lost its cancellation"


@pytest.mark.parametrize("callback", ANSWERS[:2])
async def test_the_center_ingest_stops_when_cancelled_as_the_broker_answers(
        callback: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = CancelAtAnswer(callback)
    monkeypatch.setattr(center_ingest, "new_client", hook.new_client)
    keys = load_keys(generate_keys(tmp_path / "keys").parent)
    tag = uuid.uuid4().hex[:8]
    mqtt = MqttConfig(port=shared_broker_port(), topic_prefix=f"t{tag}/v1", share_group=tag)
    store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    try:
        ingest = CenterIngest(store, verifier(keys), mqtt)
        assert await stops(ingest.run(), hook), "the center ingest lost its cancellation"
    finally:
        store.close()


async def test_a_task_a_failed_task_group_left_cancelling_still_gets_its_answers() -> None:
    """On Python 3.11 a TaskGroup whose child fails while the parent waits
    for it leaves the parent `cancelling()` (python/cpython#116720): the
    forwarder is such a task after every lost connection, and must still
    connect again."""
    async def after_a_failed_group() -> str:
        with pytest.raises(ExceptionGroup):
            async with asyncio.TaskGroup() as group:
                group.create_task(_fail())
        return await cancellable(asyncio.sleep(0, "answered"))

    assert await asyncio.create_task(after_a_failed_group()) == "answered"


async def _fail() -> None:
    raise aiomqtt.MqttError("the link is lost")


async def _ignore(_payload: bytes) -> None:
    return None
