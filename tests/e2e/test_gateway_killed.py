"""SIGKILL the gateway under load, start it again: no approved transaction
lost, none delivered twice (DESIGN rules 1 and 2)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest

from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.sandbox.demo.cards import card_pool
from posgw.sandbox.ports import free_port, port_accepts
from tests.brokers import shared_broker_port
from tests.e2e.harness import (
    TerminalLog,
    center_for,
    config_table,
    ledger_rows,
    reconnecting_terminal,
    until_center_has,
    write_toml,
)
from tests.posgw_script import POSGW

TERMINALS = 6
LOAD_LIMIT_S = 120.0  # a backstop: the load stops once the restarted gateway has answered
AFTER_RESTART = 100  # answers the restarted gateway must give before the load stops


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([POSGW, "run", "-c", str(config)], stdout=out, stderr=out)


async def until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = SYSTEM_CLOCK.monotonic() + 30
    while not await asyncio.to_thread(port_accepts, port):
        assert process.poll() is None, "the gateway exited"
        assert SYSTEM_CLOCK.monotonic() < deadline, "the gateway did not start listening"
        await asyncio.sleep(0.05)


@pytest.mark.e2e
async def test_sigkill_under_load_loses_no_approval_and_doubles_nothing(
        tmp_path: Path) -> None:
    broker_port, listen_port = shared_broker_port(), free_port()
    config = write_toml(tmp_path / "gw.toml",
                        config_table(tmp_path, broker_port, listen_port=listen_port))
    center, ingest = center_for(tmp_path, broker_port)
    cards = card_pool(11, 500)
    log = TerminalLog()
    center_task = asyncio.create_task(ingest.run())
    gateway = start_gateway(config, tmp_path / "gateway.log")
    try:
        await ingest.subscribed.wait()
        await until_listening(listen_port, gateway)
        until, stop = SYSTEM_CLOCK.monotonic() + LOAD_LIMIT_S, asyncio.Event()
        terminals = [asyncio.create_task(reconnecting_terminal(
            listen_port, f"K{n:07d}", cards, until, log, rate=20, stop=stop))
            for n in range(TERMINALS)]
        while log.answered < 100:  # kill it mid-stream, not before the load started
            await asyncio.sleep(0.05)
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        answered_before_kill = log.answered
        gateway = start_gateway(config, tmp_path / "gateway.log")
        await until_listening(listen_port, gateway)
        while log.answered < answered_before_kill + AFTER_RESTART:
            assert SYSTEM_CLOCK.monotonic() < until, "the restarted gateway stopped answering"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*terminals)
        assert log.answered > answered_before_kill, "no request was answered after the restart"
        rows = ledger_rows(f"sqlite:///{tmp_path / 'gateway.db'}")
        held = await until_center_has(center, {row.event_id for row in rows})
    finally:
        gateway.send_signal(signal.SIGTERM)
        await asyncio.to_thread(gateway.wait, 30)
        center_task.cancel()
    assert gateway.returncode == 0  # SIGTERM: a graceful stop
    approved_in_ledger = {(r.terminal_id, r.stan) for r in rows if r.response_code == "00"}
    assert log.approved <= approved_in_ledger  # every "approved" the terminals heard is recorded
    assert sorted(held) == sorted(row.event_id for row in rows)  # exactly the ledger, once each
    assert len(held) == len(set(held))
    center.close()
