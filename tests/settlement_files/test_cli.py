"""`posgw acquirer settlement-files`, run as the installed script: the files
it writes read back through the center's readers, with the faults asked for."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from posgw.center.settlement.acquirer_csv import read_acquirer_csv
from posgw.center.settlement.camt import read_camt
from posgw.protocols.settlement import plan_fee_minor
from posgw.simulator.settlement_sales import generated_sales
from tests.posgw_script import run_posgw


def test_generated_day_with_faults_reads_back(tmp_path: Path) -> None:
    done = run_posgw("acquirer", "settlement-files", "--out", str(tmp_path / "out"),
                     "--date", "2026-12-04", "--merchants", "3", "--per-merchant", "10",
                     "--rate", "0.0062", "--fee-merchant", "M0001",
                     "--missing-credit", "M0002", "--late-credit", "M0003:2")
    assert done.returncode == 0, done.stderr
    assert "30 lines" in done.stdout and "2 credits" in done.stdout
    lines = read_acquirer_csv(tmp_path / "out" / "acquirer-settlement-20261204.csv")
    assert len(lines) == 30
    credits = {c.merchant_id: c for c in read_camt(tmp_path / "out" / "bank-camt053-20261204.xml")}
    assert set(credits) == {"M0001", "M0003"}
    assert credits["M0003"].value_date == date(2026, 12, 9)  # Monday + 2 days
    m1 = [line for line in lines if line.merchant_id == "M0001" and line.amount_minor > 0]
    assert m1 and all(line.fee_minor == plan_fee_minor(line.amount_minor, Decimal("0.0062"))
                      for line in m1)


def test_sales_file_is_the_input_when_given(tmp_path: Path) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text("date,merchant_id,terminal_id,rrn,stan,amount,currency\n"
                     "2026-12-04,M0009,T0009001,634012000001,000001,125.00,USD\n"
                     "2026-12-04,M0009,T0009001,634012000002,000002,-20.00,USD\n")
    done = run_posgw("acquirer", "settlement-files", "--out", str(tmp_path), "--sales",
                     str(sales), "--fixed-fee-minor", "100", "--duplicate-rrn", "634012000001")
    assert done.returncode == 0, done.stderr
    lines = read_acquirer_csv(tmp_path / "acquirer-settlement-20261204.csv")
    assert [(line.rrn, line.fee_minor) for line in lines] == [
        ("634012000001", 75 + 100), ("634012000001", 75 + 100), ("634012000002", 0)]


def test_bad_input_is_refused_with_a_reason(tmp_path: Path) -> None:
    neither = run_posgw("acquirer", "settlement-files", "--out", str(tmp_path))
    assert neither.returncode == 2 and "--sales FILE or --date" in neither.stderr
    rate = run_posgw("acquirer", "settlement-files", "--out", str(tmp_path), "--date",
                     "2026-12-04", "--rate", "0.62%")
    assert rate.returncode == 2 and "not a decimal rate" in rate.stderr
    sales = tmp_path / "sales.csv"
    sales.write_text("date,merchant_id,terminal_id,rrn,stan,amount,currency\n"
                     "2026-12-04,M0009,T0009001,634012000001,000001,125,USD\n")
    bad = run_posgw("acquirer", "settlement-files", "--out", str(tmp_path), "--sales", str(sales))
    assert bad.returncode == 2 and "line 2" in bad.stderr and "exactly 2 decimals" in bad.stderr


def test_generated_sales_are_reproducible_and_fit_the_layout() -> None:
    first = list(generated_sales(date(2026, 12, 4), 4, 50, seed=7))
    assert first == list(generated_sales(date(2026, 12, 4), 4, 50, seed=7))
    assert first != list(generated_sales(date(2026, 12, 4), 4, 50, seed=8))
    assert len({sale.rrn for sale in first}) == 200
    assert all(len(sale.rrn) == 12 and len(sale.stan) == 6 and len(sale.terminal_id) == 8
               for sale in first)
    assert any(sale.amount_minor < 0 for sale in first)  # some returns
