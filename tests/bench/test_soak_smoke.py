"""bench/soak.py, briefly: paced traffic on serial, USB and TCP terminals
while the broker is restarted twice and the gateway SIGKILLed once; the
report must say nothing was lost and nothing doubled (and the exit status
agree)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.brokers import mosquitto_path

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.mark.e2e
def test_short_soak_with_broker_restarts_and_a_kill_loses_and_doubles_nothing(
        tmp_path: Path) -> None:
    if mosquitto_path() is None:
        pytest.skip("the soak needs mosquitto (it restarts it and relies on its persistence)")
    report_file = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "0.5", "--rate", "50", "--tcp-terminals", "4",
         "--broker-restart-every", "10", "--kill-every", "20",
         "--workdir", str(tmp_path / "work"), "--report", str(report_file)],
        capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    report = json.loads(report_file.read_text())
    assert report["broker_restarts"] >= 1 and report["gateway_kills"] >= 1
    assert set(report["answered_by_link"]) == {"serial", "usb", "tcp"}
    assert report["ledger_final"] == report["center_count"] > 0
    assert (report["lost"], report["duplicated"], report["unknown_at_center"]) == (0, 0, 0)
    assert report["approvals_not_in_ledger"] == 0
    assert "zero lost, zero duplicated" in result.stdout
