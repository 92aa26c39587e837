"""Two real center processes, one shared subscription, one PostgreSQL database.

Skipped, with the reason, when PostgreSQL is unreachable (tests/store/pg.py
makes a throw-away database per test and drops it afterwards).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from posgw.gateway.security import GatewayKeys
from tests.brokers import shared_broker_port
from tests.center.events import wires
from tests.center.processes import Topics, center_process, publish, write_config
from tests.center.stored import assert_each_once, stored_ids, wait_stored
from tests.store.pg import scratch_database

EVENTS = range(200)



async def test_two_center_processes_sharing_a_subscription_store_each_event_once(
        tmp_path: Path, keys: GatewayKeys) -> None:
    port, topics = shared_broker_port(), Topics.fresh()
    with scratch_database() as url:
        # One file, two processes: each gets its own stable client id.
        config = write_config(tmp_path / "center.toml", database=url, port=port, topics=topics,
                              client_id=None, keys_dir=tmp_path / "keys")
        with (center_process(config, ["--client-id", f"{topics.group}-a"]) as first,
              center_process(config, ["--client-id", f"{topics.group}-b"]) as second):
            await asyncio.gather(asyncio.to_thread(first.wait_ready),
                                 asyncio.to_thread(second.wait_ready))
            await publish(port, topics.tx(), wires(keys, EVENTS))
            await wait_stored(url, len(EVENTS))
            counts = [first.stop(), second.stop()]
        stored = await asyncio.to_thread(stored_ids, url)
    assert_each_once(stored, EVENTS)
    ingested = [ingested for ingested, _duplicates, _quarantined in counts]
    assert sum(ingested) == len(EVENTS)
    assert all(share > 0 for share in ingested), f"the stream was not split: {ingested}"
