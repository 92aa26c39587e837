"""`posgw center merchants` and `posgw center settlement`, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from posgw.center.db import CenterStore
from posgw.center.settlement.tables import AcquirerLineRow, BankCreditRow, SettlementFile
from posgw.cli.main import main
from posgw.simulator.settlement_files import (
    SettlementFaults,
    simulated_account,
    write_settlement_files,
)
from tests.settlement.ledger import insert_events
from tests.settlement.scenario import AS_OF, CREATED, FRIDAY, MERCHANTS, clean_day


@pytest.fixture
def center(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'center.db'}"
    CenterStore(url).close()
    config = tmp_path / "center.toml"
    config.write_text(f'[center]\ndatabase = "{url}"\n\n[settlement]\nvalue_days = 1\n'
                      'credit_grace_days = 1\n', encoding="utf-8")
    return config


def posgw(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["center", "-c", str(config), *args])


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def counts(config: Path) -> tuple[int, int, int]:
    url = config.read_text().split('"')[1]
    store = CenterStore(url)
    try:
        with store.engine.connect() as conn:
            return tuple(int(conn.scalar(select(func.count()).select_from(model)) or 0)
                         for model in (SettlementFile, AcquirerLineRow, BankCreditRow))  # type: ignore[return-value]
    finally:
        store.close()


def add_merchants(config: Path) -> None:
    for merchant in MERCHANTS:
        ok(posgw(config, "merchants", "add", merchant, "--name", f"Shop {merchant}",
                 "--branch", "B001", "--account", simulated_account(merchant),
                 "--from", "2026-01-01"))


def test_a_merchant_is_registered_with_its_account_masked_and_plans_in_order(
        center: Path) -> None:
    ok(posgw(center, "merchants", "add", "M0001", "--name", "Pho 24", "--branch", "B001",
             "--account", "VN12 ABCD 0123 4567 89", "--from", "2026-01-01"))
    ok(posgw(center, "merchants", "set-plan", "M0001", "--rate", "0.55%", "--fixed", "500",
             "--from", "2026-07-01"))
    shown = json.loads(ok(posgw(center, "merchants", "show", "M0001", "--json")))
    assert shown["account_masked"] == "VN12**********6789"
    assert "0123" not in json.dumps(shown)
    assert [(p["effective_from"], p["rate_ppm"], p["fixed_minor"]) for p in shown["plans"]] == [
        ("2026-01-01", 6_000, 0), ("2026-07-01", 5_500, 500)]
    assert "Pho 24" in ok(posgw(center, "merchants", "list"))


@pytest.mark.parametrize(("args", "says"), [
    (["--rate", "0.12345"], "four decimals"),
    (["--rate", "12"], "between 0 %"),
    (["--account", "12"], "account"),
    (["--minimum", "10", "--cap", "5"], "minimum is above the cap"),
])
def test_bad_merchant_input_exits_2_saying_why(center: Path, args: list[str], says: str) -> None:
    base = {"--name": "Shop", "--branch": "B001", "--account": "VN12ABCD0123456789"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    result = posgw(center, "merchants", "add", "M0001",
                   *[item for pair in base.items() for item in pair])
    assert result.exit_code == 2
    assert says in result.output


def test_a_second_add_and_an_unknown_merchant_are_refused(center: Path) -> None:
    add = ["merchants", "add", "M0001", "--name", "A", "--branch", "B1", "--account",
           "VN12ABCD0123456789"]
    ok(posgw(center, *add))
    assert posgw(center, *add).exit_code == 2
    assert posgw(center, "merchants", "show", "M9999").exit_code == 1
    assert posgw(center, "merchants", "set-plan", "M9999", "--rate", "1").exit_code == 2


def test_a_file_imported_twice_changes_nothing(center: Path, tmp_path: Path) -> None:
    files = write_settlement_files(tmp_path, clean_day(3).sales, created=CREATED)
    first = ok(posgw(center, "settlement", "import", "acquirer-csv", str(files.acquirer_csv)))
    assert "12 lines stored" in first
    ok(posgw(center, "settlement", "import", "camt053", str(files.camt053)))
    before = counts(center)
    again = ok(posgw(center, "settlement", "import", "acquirer-csv", str(files.acquirer_csv)))
    assert "already imported" in again
    ok(posgw(center, "settlement", "import", "camt054", str(files.camt053)))
    assert counts(center) == before == (2, 12, 4)


def test_the_same_lines_under_another_name_are_not_stored_twice(center: Path,
                                                               tmp_path: Path) -> None:
    files = write_settlement_files(tmp_path, clean_day(3).sales, created=CREATED)
    ok(posgw(center, "settlement", "import", "acquirer-csv", str(files.acquirer_csv)))
    resent = tmp_path / "resent.csv"
    header, *rows = files.acquirer_csv.read_text().splitlines()
    resent.write_text("\n".join([header, *reversed(rows)]) + "\n")  # other bytes, same lines
    said = ok(posgw(center, "settlement", "import", "acquirer-csv", str(resent)))
    assert "0 lines stored, 12 already stored" in said
    assert counts(center)[1] == 12


def test_a_malformed_file_is_refused_with_its_line_and_nothing_stored(center: Path,
                                                                      tmp_path: Path) -> None:
    files = write_settlement_files(tmp_path, clean_day(3).sales, created=CREATED)
    lines = files.acquirer_csv.read_text().splitlines()
    lines[5] = lines[5].replace(",VND", ",XX1")
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(lines) + "\n")
    result = posgw(center, "settlement", "import", "acquirer-csv", str(broken))
    assert result.exit_code == 2
    assert "line 6" in result.output and "nothing stored" in result.output
    xml = files.camt053.read_text().replace("<CdtDbtInd>CRDT</CdtDbtInd>",
                                            "<CdtDbtInd>MAYBE</CdtDbtInd>", 1)
    broken_xml = tmp_path / "broken.xml"
    broken_xml.write_text(xml)
    result = posgw(center, "settlement", "import", "camt053", str(broken_xml))
    assert result.exit_code == 2, result.output
    assert "CdtDbtInd" in result.output and "nothing stored" in result.output
    assert counts(center) == (0, 0, 0)


def test_a_mapping_reads_an_acquirer_with_other_column_names(center: Path,
                                                             tmp_path: Path) -> None:
    files = write_settlement_files(tmp_path, clean_day(1).sales, created=CREATED)
    text = files.acquirer_csv.read_text().replace("rrn,", "RetrievalRef,", 1)
    theirs = tmp_path / "theirs.csv"
    theirs.write_text(text)
    assert posgw(center, "settlement", "import", "acquirer-csv", str(theirs)).exit_code == 2
    said = ok(posgw(center, "settlement", "import", "acquirer-csv", str(theirs),
                    "--mapping", "rrn=RetrievalRef"))
    assert "4 lines stored" in said


def test_match_findings_resolve_and_report(center: Path, tmp_path: Path) -> None:
    add_merchants(center)
    day = clean_day(5)
    store = CenterStore(center.read_text().split('"')[1])
    insert_events(store.engine, day.events)
    store.close()
    files = write_settlement_files(tmp_path, day.sales, created=CREATED,
                                   faults=SettlementFaults(missing_credit="M0002"))
    ok(posgw(center, "settlement", "import", "acquirer-csv", str(files.acquirer_csv)))
    ok(posgw(center, "settlement", "import", "camt053", str(files.camt053)))
    matched = ok(posgw(center, "settlement", "match", "--date", FRIDAY.isoformat(),
                       "--as-of", AS_OF.isoformat()))
    assert "credit_missing" in matched
    [case] = json.loads(ok(posgw(center, "settlement", "findings", "--open", "--json")))
    assert (case["case_id"], case["kind"], case["merchant_id"]) == ("S-1", "credit_missing",
                                                                    "M0002")
    ok(posgw(center, "settlement", "resolve", "S-1", "--note", "paid on 2026-12-10",
             "--by", "alice"))
    assert json.loads(ok(posgw(center, "settlement", "findings", "--open", "--json"))) == []
    assert posgw(center, "settlement", "resolve", "S-1", "--note", "x").exit_code == 2
    assert posgw(center, "settlement", "resolve", "S-99", "--note", "x").exit_code == 1
    report: dict[str, Any] = json.loads(ok(posgw(
        center, "settlement", "report", "--merchant", "M0002", "--date", FRIDAY.isoformat(),
        "--json")))
    [owed] = report["owed"]
    net = sum(line.net_minor for line in files.lines if line.sale.merchant_id == "M0002")
    assert owed["net_minor"] == report["acquirer"]["net_minor"] == net
    assert report["findings"][0]["status"] == "resolved"
    csv_text = ok(posgw(center, "settlement", "report", "--merchant", "M0002", "--date",
                        FRIDAY.isoformat(), "--csv"))
    assert csv_text.splitlines()[1].startswith(f"M0002,{FRIDAY.isoformat()},VND,5,")


def test_the_statement_json_adds_up_to_the_day_reports(center: Path, tmp_path: Path) -> None:
    add_merchants(center)
    day = clean_day(5)
    store = CenterStore(center.read_text().split('"')[1])
    insert_events(store.engine, day.events)
    store.close()
    files = write_settlement_files(tmp_path, day.sales, created=CREATED)
    ok(posgw(center, "settlement", "import", "camt053", str(files.camt053)))
    statement = json.loads(ok(posgw(center, "settlement", "statement", "--merchant", "M0001",
                                    "--month", "2026-12", "--json")))
    report = json.loads(ok(posgw(center, "settlement", "report", "--merchant", "M0001",
                                 "--date", FRIDAY.isoformat(), "--json")))
    [owed] = report["owed"]
    assert statement["totals"]["net_minor"] == owed["net_minor"]
    assert statement["totals"]["fee_minor"] == owed["fee_minor"]
    assert statement["totals"]["credited_minor"] == owed["net_minor"]
    assert statement["plan"] == "0.6 % of the amount, no fixed fee per transaction"
    assert posgw(center, "settlement", "statement", "--merchant", "M0001",
                 "--month", "2026-13", "--json").exit_code == 2


def test_the_statement_pdf_carries_the_json_numbers(center: Path, tmp_path: Path) -> None:
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (the test extra) reads the PDF")
    from posgw.protocols.currency import format_amount

    add_merchants(center)
    day = clean_day(5)
    store = CenterStore(center.read_text().split('"')[1])
    insert_events(store.engine, day.events)
    store.close()
    pdf = tmp_path / "M0001.pdf"
    statement = json.loads(ok(posgw(center, "settlement", "statement", "--merchant", "M0001",
                                    "--month", "2026-12", "--out", str(pdf), "--json")))
    document = pdfium.PdfDocument(pdf.read_bytes())
    text = "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    totals = statement["totals"]
    for key in ("gross_minor", "fee_minor", "net_minor"):
        assert format_amount(totals[key], "VND") in text, key
    assert "Shop M0001" in text and statement["account_masked"] in text
