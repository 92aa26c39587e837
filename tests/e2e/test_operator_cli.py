"""The operator's commands against a running `posgw run`: cases list, show,
release; terminals list, decommission."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

from posgw.drivers.tcp_link import connect_tcp
from posgw.sandbox.ports import free_port, port_accepts
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.center.processes import center_process
from tests.e2e.harness import TCP_PROFILE, center_toml, config_table, wait_for, write_toml
from tests.posgw_script import POSGW


def posgw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POSGW, *args], capture_output=True, text=True, timeout=60)


async def three_swipes(port: int) -> None:
    transport = await connect_tcp("127.0.0.1", port)
    async with TerminalSimulator(TCP_PROFILE, transport, "P0000001", "M00000000000001",
                                 demo_cards(), response_timeout_s=5.0) as terminal:
        for step in range(3):
            assert (await terminal.purchase(demo.VISA_OK, 30_00 + step)).approved


def test_cases_and_terminals_commands_against_the_running_daemon(tmp_path: Path) -> None:
    listen, port = free_port(), shared_broker_port()
    config = str(write_toml(tmp_path / "gw.toml", config_table(tmp_path, port,
                                                               listen_port=listen)))
    # A center that confirms: a terminal retires once the center holds its events.
    with center_process(center_toml(tmp_path, port)) as center:
        center.wait_ready()
        with (tmp_path / "gw.log").open("wb") as out:
            daemon = subprocess.Popen([POSGW, "run", "-c", config], stdout=out, stderr=out)
        operate(config, listen, daemon)
        center.stop()
    assert posgw("cases", "show", "-c", config, "case-none").returncode == 1


def operate(config: str, listen: int, daemon: subprocess.Popen[bytes]) -> None:
    try:
        wait_for(lambda: port_accepts(listen), "the listener")
        asyncio.run(three_swipes(listen))
        [case] = json.loads(posgw("cases", "list", "-c", config, "--json").stdout)
        assert case["status"] == "open" and case["rule"] == "rapid_repeat"
        shown = json.loads(posgw("cases", "show", "-c", config, case["id"]).stdout)
        assert shown["evidence"]["rules"][0]["rule"] == "rapid_repeat"
        released = posgw("cases", "release", "-c", config, case["id"])
        assert released.returncode == 0 and released.stdout.startswith("done")
        [case] = json.loads(posgw("cases", "list", "-c", config, "--json").stdout)
        assert case["status"] == "released"
        retired = posgw("terminals", "decommission", "-c", config, "P0000001")
        assert retired.returncode == 0, retired.stdout + retired.stderr
        wait_for(lambda: "decommissioned" in posgw("terminals", "list", "-c", config).stdout,
                 "the terminal's retirement")
        unknown = posgw("terminals", "decommission", "-c", config, "NOPE0001")
        assert unknown.returncode == 1 and "not_found" in unknown.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
