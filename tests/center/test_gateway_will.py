"""A real gateway's Last Will reaches a real center and marks it offline.

The gateway signs its Will when it connects; killed with SIGKILL, it says
nothing, and mosquitto publishes the Will for it. The center verifies it
(nothing is quarantined) and, though the Will carries the time of the
connect, records the gateway offline; started again, it is online; stopped
cleanly (SIGTERM), its own goodbye marks it offline again.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from sqlalchemy import text

from posgw.center.db import CenterStore
from posgw.sandbox.ports import free_port
from tests.brokers import shared_broker_port
from tests.e2e.harness import center_for, config_table, write_toml
from tests.e2e.test_gateway_killed import start_gateway, until_listening

DEADLINE_S = 30.0


def gateway_state(center: CenterStore) -> tuple[str, str | None] | None:
    with center.engine.connect() as conn:
        row = conn.execute(text("SELECT state, offline_at FROM center_gateway_status")).first()
    return None if row is None else (str(row[0]), row[1])


async def until_state(center: CenterStore, state: str) -> tuple[str, str | None]:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            seen = await asyncio.to_thread(gateway_state, center)
            if seen is not None and seen[0] == state:
                return seen
            await asyncio.sleep(0.1)  # polling the center's database, with a deadline


@pytest.mark.e2e
async def test_a_killed_gateways_last_will_marks_it_offline_at_the_center(
        tmp_path: Path) -> None:
    broker_port, listen_port = shared_broker_port(), free_port()
    config = write_toml(tmp_path / "gw.toml",
                        config_table(tmp_path, broker_port, listen_port=listen_port))
    center, ingest = center_for(tmp_path, broker_port)
    center_task = asyncio.create_task(ingest.run())
    gateway = start_gateway(config, tmp_path / "gateway.log")
    try:
        await ingest.subscribed.wait()
        await until_listening(listen_port, gateway)
        assert (await until_state(center, "online"))[1] is None
        gateway.send_signal(signal.SIGKILL)
        await asyncio.to_thread(gateway.wait, 10)
        _, offline_at = await until_state(center, "offline")  # the broker sent the Will
        assert offline_at is not None
        gateway = start_gateway(config, tmp_path / "gateway.log")
        await until_listening(listen_port, gateway)
        await until_state(center, "online")
        gateway.send_signal(signal.SIGTERM)
        await asyncio.to_thread(gateway.wait, 30)
        await until_state(center, "offline")  # its own goodbye
        assert ingest.quarantined == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(10)
        center_task.cancel()
        await asyncio.gather(center_task, return_exceptions=True)
        center.close()

