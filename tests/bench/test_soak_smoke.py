"""bench/soak.py, briefly, with every fault the soak knows: 45 s of paced
traffic on serial, USB and TCP terminals, two centers on one shared
subscription and a private PostgreSQL, while the broker is stopped
(SIGTERM) and killed (SIGKILL), the gateway killed, each center killed
while storing and PostgreSQL crashed; the report must say nothing was lost
and nothing doubled (and the exit status agree), and how long the center
took to hold every ledger event after the traffic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from posgw.sandbox.postgres import postgres_bin_dir
from tests.brokers import mosquitto_path

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"

# The schedule, from the start of the traffic (seconds), the faults mostly
# apart so that a center kill finds the centers storing: broker SIGTERM at
# 20 and 40 (down 3 s), broker SIGKILL at 30, gateway SIGKILL at 17 and 34,
# PostgreSQL crashed at 25 (down 2 s), center 1 SIGKILLed at 14, 28 and 42,
# center 2 at 21 and 35.
FAULTS = ["--broker-restart-every", "20", "--broker-kill-every", "30", "--broker-outage", "3",
          "--kill-every", "17", "--center-kill-every", "14", "--centers", "2",
          "--postgres", "--postgres-restart-every", "25", "--postgres-outage", "2"]


@pytest.mark.e2e
def test_short_soak_under_every_fault_loses_and_doubles_nothing(tmp_path: Path) -> None:
    if mosquitto_path() is None:
        pytest.skip("the soak needs mosquitto (it restarts it and relies on its persistence)")
    if postgres_bin_dir() is None:
        pytest.skip("the soak's PostgreSQL crash needs the PostgreSQL server binaries")
    report_file = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "0.75", "--rate", "50", "--tcp-terminals", "4",
         *FAULTS, "--drain-timeout", "180",
         "--workdir", str(tmp_path / "work"), "--report", str(report_file)],
        capture_output=True, text=True, timeout=420, check=False)
    assert report_file.exists(), result.stdout + result.stderr[-4000:]
    report = json.loads(report_file.read_text())
    # Every fault happened.
    assert report["broker_restarts"] >= 1 and report["broker_kills"] >= 1
    assert report["gateway_kills"] >= 1 and report["postgres_restarts"] >= 1
    assert report["centers"] == 2 and report["center_kills"] >= 2
    assert report["center_kills_mid_ingest"] >= 1
    assert report["center_subscription"] == "shared ($share/center)"
    assert set(report["answered_by_link"]) == {"serial", "usb", "tcp"}
    # Exactly once, and complete in a time the report states.
    assert (report["lost"], report["duplicated"], report["unknown_at_center"]) == (0, 0, 0), \
        result.stdout
    assert report["ledger_final"] == report["center_count"] > 0
    assert report["approvals_not_in_ledger"] == 0
    assert report["complete_s"] >= 0
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "zero lost, zero duplicated" in result.stdout
