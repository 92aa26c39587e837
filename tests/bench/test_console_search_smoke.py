"""bench/console_search.py, small: it loads, searches every kind three ways
(the three agreeing on the rows, or it stops), prints its verdict and drops
its database. No figure is asserted: benches measure, tests do not."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.store.pg import scratch_database

BENCH = Path(__file__).resolve().parents[2] / "bench" / "console_search.py"


@pytest.mark.e2e
def test_the_console_search_bench_runs_small_and_cleans_up() -> None:
    with scratch_database():  # skipped here when PostgreSQL is unreachable
        pass
    database = f"posgw_bench_smoke_{uuid.uuid4().hex[:10]}"
    result = subprocess.run([sys.executable, str(BENCH), "--events", "4000", "--searches",
                             "10", "--database", database, "--drop"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("loaded 4,000 events")
    for kind in ("card", "rrn", "terminal", "merchant", "branch"):
        assert any(line.startswith(kind) for line in lines), kind
    assert "console search: worst p95" in result.stdout
    assert lines[-1] == f"dropped {database}"
