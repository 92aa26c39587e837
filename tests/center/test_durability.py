"""The center loses nothing: ack after commit, persistent session, broker restarts.

Real `posgw center -c` processes (crash = SIGKILL), a real broker on
loopback; every published event must end up stored exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security import GatewayKeys
from tests.brokers import private_mosquitto, shared_broker_port
from tests.center.events import verifier, wires
from tests.center.processes import SESSION_EXPIRY_S, Topics, center_process, publish, write_config
from tests.center.stored import assert_each_once, stored_ids, wait_stored


async def test_a_center_killed_mid_stream_and_restarted_stores_every_event_once(
        tmp_path: Path, keys: GatewayKeys) -> None:
    """SIGKILL while messages are in flight: what was received but not yet
    committed had not been acknowledged either, so the broker redelivers it to
    the persistent session, together with what was published meanwhile."""
    port, topics = shared_broker_port(), Topics.fresh()
    url = f"sqlite:///{tmp_path / 'center.db'}"
    config = write_config(tmp_path / "center.toml", database=url, port=port, topics=topics,
                          client_id=f"center-{topics.group}", keys_dir=tmp_path / "keys")
    with center_process(config) as first:
        await asyncio.to_thread(first.wait_ready)
        # Killed while the publisher still runs: a batching center keeps up
        # with one sequential publisher, so a finished stream proves nothing.
        # (700 in all: under mosquitto's default max_queued_messages, 1000.)
        async with asyncio.TaskGroup() as group:
            group.create_task(publish(port, topics.tx(), wires(keys, range(600))))
            stored_before = len(await wait_stored(url, 20))
            first.kill()
    assert stored_before < 600, "the crash came too late to prove anything"
    await publish(port, topics.tx(), wires(keys, range(600, 700)))  # while no center runs
    with center_process(config) as second:
        await asyncio.to_thread(second.wait_ready)
        await wait_stored(url, 700)
        second.stop()
    assert_each_once(await asyncio.to_thread(stored_ids, url), range(700))


@asynccontextmanager
async def running(ingest: CenterIngest) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as group:
        task = group.create_task(ingest.run())
        try:
            await asyncio.wait_for(ingest.subscribed.wait(), 10)
            yield
        finally:
            task.cancel()


async def test_events_queued_while_the_center_is_down_survive_a_broker_restart(
        tmp_path: Path, keys: GatewayKeys) -> None:
    """The broker keeps the stopped center's session on disk (mosquitto with
    persistence): what was published before the restart is delivered after."""
    url = f"sqlite:///{tmp_path / 'center.db'}"
    store = CenterStore(url)
    try:
        with private_mosquitto(tmp_path, persistent=True) as broker:
            mqtt = MqttConfig(port=broker.port, topic_prefix="pos/v1", share_group="center",
                              client_id="center-restart", session_expiry_s=SESSION_EXPIRY_S)
            async with running(CenterIngest(store, verifier(keys), mqtt)):
                await publish(broker.port, "pos/v1/B001/T0001/tx", wires(keys, range(50)))
                await wait_stored(url, 50)
            await publish(broker.port, "pos/v1/B001/T0001/tx", wires(keys, range(50, 100)))
            broker.stop()
            broker.start()
            async with running(CenterIngest(store, verifier(keys), mqtt)):
                await wait_stored(url, 100)
    finally:
        store.close()
    assert_each_once(stored_ids(url), range(100))

