"""The center reloads a branch's risk rules by command: `posgw center cmd
BRANCH reload_risk` over a real broker, the reply names the rules now in
force, and the new threshold decides the very next sale; a file with a
mistake is refused with its reason and changes nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from sqlmodel import select

from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.config import load_config
from posgw.gateway.daemon import Gateway
from posgw.gateway.store import LedgerEntry, Store
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.e2e.harness import (
    BRANCH,
    TCP_PROFILE,
    center_toml,
    config_table,
    connected_gateway,
    write_toml,
)
from tests.posgw_script import POSGW


async def swipe_twice(gateway: Gateway, terminal_id: str, pan: str) -> list[str]:
    """Two sales of one card on one terminal within a minute; the ledger's statuses."""
    transport = await connect_tcp("127.0.0.1", gateway.listener_ports[0])
    async with TerminalSimulator(TCP_PROFILE, transport, terminal_id, "M00000000000001",
                                 demo_cards(), response_timeout_s=5.0) as terminal:
        for amount in (15_00, 15_01):
            assert (await terminal.purchase(pan, amount)).approved
    return statuses(gateway.config.database, terminal_id)


def statuses(database: str, terminal_id: str) -> list[str]:
    query = (select(LedgerEntry.status).where(LedgerEntry.terminal_id == terminal_id)
             .order_by(LedgerEntry.id))  # type: ignore[arg-type]
    with Store(database) as store, store.session() as session:
        return list(session.scalars(query))


def center_cmd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POSGW, "center", "-c", str(config), "cmd", BRANCH, *args,
                           "--wait-reply", "15"], capture_output=True, text=True, timeout=60)


async def test_reload_risk_command_applies_the_new_threshold_and_refuses_a_bad_file(
        tmp_path: Path) -> None:
    port = shared_broker_port()
    gateway_toml = write_toml(tmp_path / "gw.toml", config_table(tmp_path, port))
    rules = gateway_toml.read_text()
    center_config = center_toml(tmp_path, port)
    async with connected_gateway(load_config(gateway_toml)) as gateway:
        # The default: a third swipe within 300 s is frozen, a second is not.
        assert await swipe_twice(gateway, "K0000001", demo.VISA_OK) == ["settled", "settled"]
        gateway_toml.write_text(rules + "\n[risk.rules.rapid_repeat]\nthreshold = 2\n")
        reloaded = await asyncio.to_thread(center_cmd, center_config, "reload_risk")
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        reply = json.loads(reloaded.stdout.splitlines()[-1])
        assert reply["outcome"] == "done" and "rapid_repeat 2/300s freeze" in reply["detail"]
        assert await swipe_twice(gateway, "K0000002", demo.UNIONPAY_OK) == ["settled", "frozen"]
        gateway_toml.write_text(rules + "\n[risk.rules.rapid_repeat]\nthreshold = 0\n")
        refused = await asyncio.to_thread(center_cmd, center_config, "reload_risk")
        assert refused.returncode == 1
        reply = json.loads(refused.stdout.splitlines()[-1])
        assert reply["outcome"] == "rejected"
        assert "risk.rules.rapid_repeat.threshold" in reply["detail"]
        # Nothing changed: the threshold is still 2.
        assert await swipe_twice(gateway, "K0000003", demo.VISA_LOW) == ["settled", "frozen"]
