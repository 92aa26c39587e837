"""A broker crash loses no acknowledged event (issue 16, DESIGN rule 2).

The operator's scenario, with the real `posgw run` and `posgw center`: the
center's persistent session is on the broker, the center is away (a deploy, a
night), purchases are approved and the gateway gets its PUBACKs, mosquitto is
SIGKILLed (a power cut: its persistence file is older than those messages)
and started again, and the center comes back. A PUBACK only meant "the broker
has it"; the gateway keeps every event until the center confirms it stored
it, so it sends them again and the center ends with each approval exactly
once, on a plain subscription and on a shared one.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from posgw.center.command_key import generate_command_key
from posgw.center.db import CenterStore
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from posgw.gateway.store import Store
from posgw.sandbox.demo.cards import card_pool
from posgw.sandbox.ports import free_port
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import private_broker
from tests.center.processes import CenterProcess
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    TCP_PROFILE,
    config_table,
    ledger_rows,
    topic_prefix,
    until_center_has,
    write_toml,
)
from tests.e2e.test_gateway_killed import start_gateway, until_listening

PURCHASES = 60
#: Short, so the test does not wait a minute; the default is sized for a
#: center that is briefly slow (docs: gateway configuration).
CONFIRM_TIMEOUT_S = 2


def center_config(workdir: Path, broker_port: int, command_key: Path, share_group: str) -> Path:
    return write_toml(workdir / "center.toml", {
        "center": {"database": f"sqlite:///{workdir / 'center.db'}",
                   "command_key": str(command_key)},
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "topic_prefix": topic_prefix(workdir),
                 "client_id": f"center-{free_port()}", "share_group": share_group,
                 "session_expiry_s": 600},
        "gateways": [{"id": GATEWAY_ID, "branch_id": BRANCH,
                      "public_key": str(workdir / "keys" / PUBLIC_KEY_FILE)}]})


async def approve_purchases(port: int, count: int) -> int:
    cards = card_pool(5, count)
    approved = 0
    async with TerminalSimulator(TCP_PROFILE, await connect_tcp("127.0.0.1", port), "C0000001",
                                 "M00000000000001", cards, response_timeout_s=5.0) as terminal:
        for n in range(count):
            exchange = await terminal.purchase(cards[n % len(cards)].pan, 10_00 + n)
            approved += exchange.approved
    return approved


@pytest.mark.e2e
@pytest.mark.parametrize("share_group", ["", "center"], ids=["plain", "shared"])
async def test_broker_sigkill_while_the_center_is_away_loses_no_approval(
        tmp_path: Path, share_group: str) -> None:
    broker = private_broker(tmp_path, persistent=True)
    center_pub = generate_command_key(tmp_path / "center-keys")
    with broker:
        listen_port = free_port()
        table = config_table(tmp_path, broker.port, listen_port=listen_port)
        table["keys"]["center_public_key"] = str(center_pub)
        table["forward"] = {"confirm_timeout_s": CONFIRM_TIMEOUT_S}
        gateway_toml = write_toml(tmp_path / "gw.toml", table)
        center_toml = center_config(tmp_path, broker.port,
                                    center_pub.with_name("command.key"), share_group)

        first = CenterProcess(center_toml)  # leaves its persistent session on the broker
        await asyncio.to_thread(first.wait_ready)
        await asyncio.to_thread(first.stop)

        gateway = start_gateway(gateway_toml, tmp_path / "gateway.log")
        try:
            await until_listening(listen_port, gateway)
            assert await approve_purchases(listen_port, PURCHASES) == PURCHASES
            await until_published(tmp_path / "gateway.db", PURCHASES)
            broker.kill()  # SIGKILL: what it acknowledged since its last save is gone
            broker.start()
            second = CenterProcess(center_toml)
            try:
                await asyncio.to_thread(second.wait_ready)
                rows = ledger_rows(f"sqlite:///{tmp_path / 'gateway.db'}")
                center = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
                held = await until_center_has(center, {row.event_id for row in rows}, 90.0)
                center.close()
            finally:
                second.stop()
        finally:
            gateway.send_signal(signal.SIGTERM)
            await asyncio.to_thread(gateway.wait, 30)
    assert len(rows) == PURCHASES
    assert sorted(held) == sorted(row.event_id for row in rows)  # every approval, once each


async def until_published(database: Path, count: int, timeout_s: float = 30.0) -> None:
    """Poll (with a deadline) until the broker has acknowledged every event
    and none is confirmed yet: the center is away, so PUBACK is all there is."""
    deadline = SYSTEM_CLOCK.monotonic() + timeout_s
    while True:
        with Store(f"sqlite:///{database}") as store:
            stats = store.outbox_stats()
        if stats.pending == 0 and stats.published >= count:
            assert stats.published == count, stats  # nothing else waits for the center
            return
        assert SYSTEM_CLOCK.monotonic() < deadline, f"not all published: {stats}"
        await asyncio.sleep(0.1)
