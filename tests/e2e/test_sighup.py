"""SIGHUP re-reads the risk rules without stopping the daemon."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from posgw.sandbox.ports import free_port, port_accepts
from tests.brokers import shared_broker_port
from tests.e2e.harness import config_table, wait_for, write_toml
from tests.posgw_script import POSGW


def test_sighup_reloads_the_risk_rules_and_a_bad_file_changes_nothing(tmp_path: Path) -> None:
    listen = free_port()
    table = config_table(tmp_path, shared_broker_port(), listen_port=listen)
    config = write_toml(tmp_path / "gw.toml", table)
    log = tmp_path / "gw.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen([POSGW, "run", "-c", str(config)], stdout=out, stderr=out)
    try:
        wait_for(lambda: port_accepts(listen), "the listener")
        text = config.read_text()
        config.write_text(text + "\n[risk.rules.rapid_repeat]\nthreshold = 5\n")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "risk rules reloaded" in log.read_text(), "the reload")
        config.write_text(text + "\n[risk.rules.no_such_rule]\nthreshold = 1\n")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "risk rules not reloaded" in log.read_text(), "the refusal")
        assert daemon.poll() is None and port_accepts(listen)
        assert "no_such_rule" in log.read_text()
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
