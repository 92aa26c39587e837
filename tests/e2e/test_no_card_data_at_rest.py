"""After a demo run, no full card number or track data rests anywhere the
system wrote: the gateway's and the center's databases (and WAL files, the
card vault's AES-GCM ciphertexts included), the broker's and the daemon's
logs, and every event the center received (which is what went over MQTT)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from posgw.sandbox.demo.cards import card_pool
from posgw.simulator.cards import demo_cards
from tests.e2e.harness import leaked
from tests.posgw_script import POSGW


def card_numbers(seed: int) -> set[str]:
    return {card.pan for card in demo_cards() + card_pool(seed)}


def test_the_scan_finds_a_pan_where_there_is_one() -> None:
    pan = "4761739001010010"
    assert leaked(b'{"track2": "' + pan.encode() + b'=30122010"}', {pan}) == {pan}
    assert leaked(pan.encode().hex().encode(), {pan}) == {pan}
    assert leaked(b"476173******0010", {pan}) == set()


@pytest.mark.e2e
def test_no_full_pan_or_track_data_in_any_file_the_demo_wrote(tmp_path: Path) -> None:
    work = tmp_path / "work"
    result = subprocess.run([POSGW, "demo", "--duration", "5", "--terminals", "2",
                             "--workdir", str(work), "--seed", "3"],
                            capture_output=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    pans = card_numbers(3)
    files = [path for path in work.rglob("*") if path.is_file()]
    assert {"gateway.db", "center.db", "demo.log"} <= {path.name for path in files}
    for path in files:
        assert leaked(path.read_bytes(), pans) == set(), f"card number found in {path.name}"
    assert leaked(result.stdout, pans) == set()
    # The demo froze sales, so the card vault held (encrypted) PANs while scanned.
    with sqlite3.connect(work / "gateway.db") as db:
        assert db.execute("SELECT count(*) FROM card_vault").fetchone()[0] > 0
