"""The broker stops for 30 s while terminals keep buying, then comes back:
every transaction reaches the center, none twice (the outbox, not the MQTT
client, holds what is unsent)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.gateway.daemon import Gateway
from posgw.gateway.store import Store
from posgw.sandbox.demo.cards import card_pool
from tests.brokers import private_mosquitto
from tests.e2e.harness import (
    TerminalLog,
    center_for,
    gateway_config,
    ledger_rows,
    reconnecting_terminal,
    until_center_has,
)

OUTAGE_S = 30.0
TERMINALS = 4


@pytest.mark.e2e
async def test_broker_down_30s_under_load_then_everything_arrives_once(
        tmp_path: Path) -> None:
    with private_mosquitto(tmp_path, persistent=True) as broker:
        config = gateway_config(tmp_path, broker.port)
        center, ingest = center_for(tmp_path, broker.port)
        gateway, stop = Gateway(config), asyncio.Event()
        center_task = asyncio.create_task(ingest.run())
        run = asyncio.create_task(gateway.run(stop))
        log = TerminalLog()
        try:
            await ingest.subscribed.wait()
            await gateway.ready.wait()
            until = SYSTEM_CLOCK.monotonic() + OUTAGE_S + 6
            terminals = [asyncio.create_task(reconnecting_terminal(
                gateway.listener_ports[0], f"O{n:07d}", card_pool(5, 400), until, log,
                rate=5)) for n in range(TERMINALS)]
            while log.answered < 40:
                await asyncio.sleep(0.05)
            await asyncio.to_thread(broker.stop)
            answered_at_stop = log.answered
            await asyncio.sleep(OUTAGE_S)  # the outage itself is what is under test
            with Store(config.database) as store:
                assert store.outbox_stats().depth > 0  # sales went on, events waited
            await asyncio.to_thread(broker.start)
            await asyncio.gather(*terminals)
            assert log.answered > answered_at_stop + 100
            rows = ledger_rows(config.database)
            held = await until_center_has(center, {row.event_id for row in rows}, 90)
        finally:
            stop.set()
            await run
            center_task.cancel()
    assert sorted(held) == sorted(row.event_id for row in rows)
    assert log.approved <= {(r.terminal_id, r.stan) for r in rows if r.response_code == "00"}
    center.close()
