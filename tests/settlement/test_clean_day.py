"""A clean day of 100,000 transactions yields no finding.

The events are bulk-inserted; the acquirer's CSV and the bank's camt.053
are written by the simulator, read by the real readers and imported; then
the whole day is matched. What comes back from the database is only
findings, so the day costs a few joins, not 100,000 rows in Python.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from posgw.center.db import CenterStore
from posgw.simulator.settlement_files import SettlementFaults
from tests.settlement.scenario import MERCHANTS, clean_day, match, register, settle_day

TRANSACTIONS = 100_000


@pytest.mark.e2e
def test_a_clean_day_of_100000_transactions_yields_no_finding(sqlite_store: CenterStore,
                                                               tmp_path: Path) -> None:
    register(sqlite_store)
    day = clean_day(TRANSACTIONS // len(MERCHANTS))
    assert len(day.events) == TRANSACTIONS
    settle_day(sqlite_store, tmp_path, day)
    result = match(sqlite_store)
    assert sum(result.found.values()) == 0, result.found


@pytest.mark.e2e
def test_one_fault_in_100000_transactions_is_found_alone(sqlite_store: CenterStore,
                                                        tmp_path: Path) -> None:
    register(sqlite_store)
    day = clean_day(TRANSACTIONS // len(MERCHANTS))
    twice = day.sales[54_321]
    settle_day(sqlite_store, tmp_path, day, SettlementFaults(duplicate_line=twice.rrn))
    result = match(sqlite_store)
    assert dict(result.opened) == {"charged_twice": 1}
