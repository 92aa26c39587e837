"""The center notices a gateway's seq that never arrives (issue 17, finding 4).

A client that took the center's session acknowledged 298 `tx` the center
never stored, and nothing showed it. Every outbox message of a gateway
carries one seq; the center stores transaction events and records the seqs
of statuses, cases and replies, and a real `posgw center` process reports a
seq missing past `seq_gap_settle_s`: a log line, `gateways list`, and its
summary. When the seq arrives after all (the gateway publishes unconfirmed
events again), the gap closes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.seq_gaps import SeqGapWatcher
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from posgw.protocols.contract import terminal_status
from tests.brokers import shared_broker_port
from tests.center.events import DAY, GATEWAY_ID, TX_TOPIC, signed_event, verifier, wire
from tests.center.processes import Topics, center_process, publish, write_config
from tests.center.stored import wait_stored
from tests.center.test_registration import posgw

SETTLE_S = 1
DEADLINE_S = 20.0


def status_event(keys: GatewayKeys, seq: int) -> bytes:
    """A signed terminal status of T0001, numbered `seq` by the gateway's outbox."""
    payload = terminal_status("T0001", "online", profile=None, event_id=f"st-{seq}",
                              branch_id="B001", gateway_id=GATEWAY_ID, occurred_at=DAY)
    return wire(keys.signer.sign({**payload, "seq": seq}))


async def missing_in_list(config: Path, wanted: int) -> dict[str, Any]:
    """Polls `gateways list --json` with a deadline until gw-1 shows `wanted` missing."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            result = await asyncio.to_thread(posgw, config, "gateways", "list", "--json")
            [entry] = [e for e in json.loads(result.stdout) if e["gateway_id"] == GATEWAY_ID]
            if entry["seqs_missing"] == wanted:
                return dict(entry)
            await asyncio.sleep(0.1)


async def test_a_seq_that_never_arrives_is_reported_until_it_does(tmp_path: Path) -> None:
    port, topics = shared_broker_port(), Topics.fresh()
    url = f"sqlite:///{tmp_path / 'center.db'}"
    keys = load_keys(generate_keys(tmp_path / "keys").parent)
    config = write_config(tmp_path / "center.toml", database=url, port=port, topics=topics,
                          client_id=f"{topics.group}-gaps", keys_dir=tmp_path / "keys")
    config.write_text(config.read_text().replace(
        "[center]\n", f"[center]\nseq_gap_settle_s = {SETTLE_S}\n"))
    with center_process(config) as center:
        await asyncio.to_thread(center.wait_ready)
        # seq 3 is a transaction event someone else took; seq 4 a status.
        await publish(port, topics.tx(), [wire(signed_event(keys, n)) for n in (1, 2, 5)])
        await publish(port, f"{topics.prefix}/B001/T0001/status", [status_event(keys, 4)])
        assert sorted(await wait_stored(url, 3)) == [f"ev-B001-T0001-{n}" for n in (1, 2, 5)]
        entry = await missing_in_list(config, 1)
        assert entry["newest_seq"] == 5
        assert any("gateway gw-1: 1 seq(s) never arrived (3)" in line for line in center.lines)
        # The gateway publishes what the center did not confirm: seq 3 arrives.
        await publish(port, topics.tx(), [wire(signed_event(keys, 3))])
        await missing_in_list(config, 0)
        ingested, _, quarantined = center.stop()
    assert (ingested, quarantined) == (4, 0)
    assert any("seqs missing 0" in line for line in center.lines)
    assert any("every missing seq has arrived" in line for line in center.lines)


async def test_an_out_of_order_seq_within_the_settling_time_is_no_gap(
        store: CenterStore, keys: GatewayKeys) -> None:
    now = [0.0]
    watcher = SeqGapWatcher(store, lambda: [GATEWAY_ID], settle_s=60, clock=lambda: now[0])
    ingest = CenterIngest(store, verifier(keys, branch="B001"), MqttConfig())
    assert await ingest.handle(TX_TOPIC, wire(signed_event(keys, 1))) == "ingested"
    assert await ingest.handle("pos/v1/B001/T0001/status", status_event(keys, 3)) == "counted"
    watcher.check()
    now[0] = 30.0
    watcher.check()
    assert watcher.missing == {GATEWAY_ID: 0}  # 2 is late, not yet missing
    now[0] = 61.0
    watcher.check()
    assert watcher.missing == {GATEWAY_ID: 1}
    assert await ingest.handle(TX_TOPIC, wire(signed_event(keys, 2))) == "ingested"
    watcher.check()
    assert watcher.missing == {GATEWAY_ID: 0}
