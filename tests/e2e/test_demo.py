"""`posgw demo` itself: the README's first command, through every link type."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from posgw.simulator.pty_pair import pty_supported
from tests.posgw_script import POSGW


@pytest.mark.e2e
def test_demo_exits_0_with_the_center_holding_exactly_the_ledger(tmp_path: Path) -> None:
    summary_path = tmp_path / "s.json"
    result = subprocess.run([POSGW, "demo", "--duration", "6", "--terminals", "2",
                             "--summary-json", str(summary_path), "--workdir",
                             str(tmp_path / "work")], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["missing"] == 0 and summary["duplicates"] == 0
    assert summary["ledger_final"] == summary["center_received"] > 20
    assert summary["by_outcome"]["settled"] > 0
    assert "exactly once" in result.stdout
    if "broker: mosquitto" in result.stdout:  # provisioned as deploy/mosquitto/ is
        assert "(a password and ACL per client)" in result.stdout
        assert {"passwd", "acl"} <= {p.name for p in (tmp_path / "work").iterdir()}
    by_terminal = summary["by_terminal"]
    # Every link type carried transactions: USB, TCP, and serial where ptys exist.
    assert by_terminal["T0000902"] > 0 and by_terminal["T0000001"] > 0
    if pty_supported():
        assert by_terminal["T0000901"] > 0


@pytest.mark.e2e
def test_demo_on_the_embedded_broker_as_on_a_machine_without_mosquitto(
        tmp_path: Path) -> None:
    summary_path = tmp_path / "s.json"
    result = subprocess.run([POSGW, "demo", "--duration", "4", "--terminals", "1",
                             "--broker", "embedded", "--summary-json", str(summary_path)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broker: embedded" in result.stdout
    summary = json.loads(summary_path.read_text())
    assert summary["missing"] == summary["duplicates"] == 0 and summary["ledger_final"] > 0


def test_demo_help_explains_what_it_starts() -> None:
    result = subprocess.run([POSGW, "demo", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for word in ("mosquitto", "pty", "USB", "--summary-json", "exactly"):
        assert word in result.stdout
