"""`posgw demo`'s settlement step, run for real: each injected fault found
exactly once with the right amount, nothing else; checked against the files
the demo wrote and the cases in its center database, not only its own word."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from collections import Counter, defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from posgw.center.settlement.camt import read_camt
from tests.posgw_script import POSGW

SEED = 5
FAULT_KINDS = {"rate": "fee_above_plan", "fixed_fee": "fee_above_plan",
               "duplicate_line": "charged_twice", "missing_credit": "credit_missing",
               "late_credit": "credit_missing"}


Run = subprocess.CompletedProcess[str]


def run_demo(tmp_path: Path, *extra: str) -> tuple[Run, dict[str, Any]]:
    summary_path = tmp_path / "s.json"
    result = subprocess.run([POSGW, "demo", "--duration", "5", "--terminals", "3",
                             "--seed", str(SEED), "--summary-json", str(summary_path),
                             "--workdir", str(tmp_path / "work"), *extra],
                            capture_output=True, text=True, timeout=180)
    assert summary_path.exists(), result.stdout + result.stderr
    return result, json.loads(summary_path.read_text())


def cents(text: str) -> int:
    return int(Decimal(text) * 100)  # the demo's cards pay in EUR


def plan_fee(amount: int) -> int:
    """0.6 %, rounded half up to the cent; a return pays none."""
    if amount <= 0:
        return 0
    return int((Decimal(amount) * Decimal("0.006")).quantize(Decimal(1), ROUND_HALF_UP))


def expected_from_files(workdir: Path, merchant: dict[str, str]) -> dict[str, int]:
    """Each fault's amount as the acquirer's CSV shows it."""
    (csv_path,) = (workdir / "settlement").glob("acquirer-settlement-*.csv")
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    excess: Counter[str] = Counter()
    net: Counter[str] = Counter()
    for row in rows:
        amount, fee = cents(row["amount"]), cents(row["fee"])
        excess[row["merchant_id"]] += max(0, fee - plan_fee(amount))
        net[row["merchant_id"]] += cents(row["net"])
    (twice,) = [key for key, n in Counter((r["terminal_id"], r["rrn"]) for r in rows).items()
                if n == 2]
    duplicate = next(r for r in rows if (r["terminal_id"], r["rrn"]) == twice)
    assert duplicate["merchant_id"] == merchant["duplicate_line"]
    return {"rate": excess[merchant["rate"]], "fixed_fee": excess[merchant["fixed_fee"]],
            "duplicate_line": cents(duplicate["amount"]),
            "missing_credit": net[merchant["missing_credit"]],
            "late_credit": net[merchant["late_credit"]]}


def credits_by_merchant(workdir: Path) -> dict[str, list[date]]:
    (camt_path,) = (workdir / "settlement").glob("bank-camt053-*.xml")
    value_dates: dict[str, list[date]] = defaultdict(list)
    for credit in read_camt(camt_path):
        assert credit.merchant_id is not None
        value_dates[credit.merchant_id].append(credit.value_date)
    return value_dates


@pytest.mark.e2e
def test_the_demo_finds_each_injected_settlement_fault_exactly_once(tmp_path: Path) -> None:
    result, summary = run_demo(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["ok"] and summary["missing"] == 0  # the exactly-once check, as before
    settlement = summary["settlement"]
    assert settlement["skipped"] is None and settlement["refused"] is None
    assert (settlement["faults_injected"], settlement["faults_found"],
            settlement["unexpected"], settlement["ok"]) == (5, 5, 0, True)
    assert "settlement: 5 faults injected, 5 found, 0 unexpected" in result.stdout
    merchant = {check["fault"]: check["merchant_id"] for check in settlement["checks"]}
    workdir = tmp_path / "work"
    want = expected_from_files(workdir, merchant)
    with sqlite3.connect(workdir / "center.db") as db:
        cases = db.execute("SELECT kind, merchant_id, amount_minor, evidence "
                           "FROM settlement_cases").fetchall()
    # Exactly one case per fault, of its kind, merchant and amount; no other case.
    assert sorted((kind, who, amount) for kind, who, amount, _ in cases) == sorted(
        (FAULT_KINDS[fault], merchant[fault], want[fault]) for fault in FAULT_KINDS)
    assert all(amount > 0 for amount in want.values())
    found = {(f["kind"], f["merchant_id"]): f for f in settlement["findings"]}
    assert len(found) == 5 and all(f["fault"] is not None for f in found.values())
    # The credits as the bank's file has them: one never sent, one after the deadline.
    credits = credits_by_merchant(workdir)
    assert merchant["missing_credit"] not in credits
    late = json.loads(next(e for k, who, _, e in cases
                           if k == "credit_missing" and who == merchant["late_credit"]))
    assert credits[merchant["late_credit"]] == [date.fromisoformat(late["credits"][0]
                                                                   ["value_date"])]
    assert late["credits"][0]["value_date"] > late["deadline"]
    fixed = json.loads(next(e for k, who, _, e in cases
                            if k == "fee_above_plan" and who == merchant["fixed_fee"]))
    assert fixed["pattern"] == "a fixed charge of 100 per transaction"


@pytest.mark.e2e
def test_the_demo_without_its_settlement_step(tmp_path: Path) -> None:
    result, summary = run_demo(tmp_path, "--no-settlement")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["settlement"] is None and summary["ok"]
    assert "settlement:" not in result.stdout and "Settlement findings" not in result.stdout
    assert not (tmp_path / "work" / "settlement").exists()


def test_demo_help_tells_of_the_settlement_step() -> None:
    result = subprocess.run([POSGW, "demo", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for words in ("camt.053", "0.62 %", "--no-settlement", "exactly once"):
        assert words in result.stdout
