"""The simulator's settlement files: what it writes, our readers read back,
valid against the official schema, with each injected fault where it should be."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from lxml import etree

from posgw.center.settlement.acquirer_csv import read_acquirer_csv
from posgw.center.settlement.camt import official_schema, read_camt, safe_parser
from posgw.protocols.redact import mask_account
from posgw.protocols.settlement import plan_fee_minor
from posgw.simulator.settlement_files import (
    ApprovedSale,
    SettlementFaults,
    simulated_account,
    write_settlement_files,
)

FRIDAY = date(2026, 12, 4)
MONDAY = date(2026, 12, 7)
CREATED = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def sale(merchant: str, number: int, amount_minor: int, currency: str = "VND") -> ApprovedSale:
    return ApprovedSale(FRIDAY, merchant, f"T{merchant[1:]}001", f"{634012000000 + number}",
                        f"{number:06d}", amount_minor, currency)


SALES = [
    sale("M0001", 1, 1_250_000),
    sale("M0001", 2, 333_333),
    sale("M0001", 3, -250_000),  # a refund: no fee
    sale("M0002", 4, 2_000_000),
    sale("M0003", 5, 12_550, "USD"),
]


def test_clean_files_read_back_exactly(tmp_path: Path) -> None:
    files = write_settlement_files(tmp_path, SALES, created=CREATED)
    lines = read_acquirer_csv(files.acquirer_csv)
    assert [(line.rrn, line.amount_minor, line.fee_minor, line.net_minor) for line in lines] == [
        (s.rrn, s.amount_minor, plan_fee_minor(s.amount_minor, Decimal("0.006")),
         s.amount_minor - plan_fee_minor(s.amount_minor, Decimal("0.006"))) for s in SALES]
    assert [line.fee_minor for line in lines] == [7_500, 2_000, 0, 12_000, 75]  # 1999.998 -> 2000
    credits = {c.merchant_id: c for c in read_camt(files.camt053)}
    assert credits["M0001"].amount_minor == 1_250_000 + 333_333 - 250_000 - 7_500 - 2_000
    assert credits["M0003"].amount_minor == 12_550 - 75
    assert {c.value_date for c in credits.values()} == {MONDAY}  # T+1 working day
    assert {c.settles_date for c in credits.values()} == {FRIDAY}
    assert credits["M0002"].account_masked == mask_account(simulated_account("M0002"))


def test_written_camt053_is_valid_against_the_official_xsd(tmp_path: Path) -> None:
    files = write_settlement_files(tmp_path, SALES, created=CREATED)
    document = etree.parse(str(files.camt053), safe_parser())
    assert official_schema("camt.053.001.08").validate(document)


def test_files_written_twice_are_the_same_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_settlement_files(tmp_path / "a", SALES, created=CREATED)
    second = write_settlement_files(tmp_path / "b", SALES, created=CREATED)
    assert first.acquirer_csv.read_bytes() == second.acquirer_csv.read_bytes()
    assert first.camt053.read_bytes() == second.camt053.read_bytes()


def test_rate_fault_charges_the_other_rate_for_the_named_merchant(tmp_path: Path) -> None:
    faults = SettlementFaults(rate=Decimal("0.0062"), fee_merchants=frozenset({"M0002"}))
    lines = read_acquirer_csv(write_settlement_files(tmp_path, SALES, faults=faults,
                                                     created=CREATED).acquirer_csv)
    fees = {line.rrn: line.fee_minor for line in lines}
    assert fees[SALES[3].rrn] == 12_400  # 0.62 % of 2,000,000 where the plan says 12,000
    assert fees[SALES[0].rrn] == 7_500  # other merchants keep the plan


def test_fixed_fee_fault_adds_a_surcharge_to_every_sale_not_to_returns(tmp_path: Path) -> None:
    faults = SettlementFaults(fixed_fee_minor=100)
    files = write_settlement_files(tmp_path, SALES, faults=faults, created=CREATED)
    fees = [line.fee_minor for line in read_acquirer_csv(files.acquirer_csv)]
    assert fees == [7_600, 2_100, 0, 12_100, 175]


def test_duplicate_line_is_settled_and_credited_twice(tmp_path: Path) -> None:
    faults = SettlementFaults(duplicate_line=SALES[3].rrn)
    files = write_settlement_files(tmp_path, SALES, faults=faults, created=CREATED)
    rrns = [line.rrn for line in read_acquirer_csv(files.acquirer_csv)]
    assert rrns.count(SALES[3].rrn) == 2 and len(rrns) == len(SALES) + 1
    credits = {c.merchant_id: c.amount_minor for c in read_camt(files.camt053)}
    assert credits["M0002"] == 2 * (2_000_000 - 12_000)


def test_missing_credit_leaves_the_merchant_out_of_the_statement(tmp_path: Path) -> None:
    faults = SettlementFaults(missing_credit="M0001")
    files = write_settlement_files(tmp_path, SALES, faults=faults, created=CREATED)
    assert sorted(c.merchant_id or "" for c in read_camt(files.camt053)) == ["M0002", "M0003"]
    assert len(read_acquirer_csv(files.acquirer_csv)) == len(SALES)  # still settled


def test_late_credit_arrives_the_given_days_after_it_is_due(tmp_path: Path) -> None:
    faults = SettlementFaults(late_credit=("M0002", 3))
    files = write_settlement_files(tmp_path, SALES, faults=faults, created=CREATED)
    dates = {c.merchant_id: (c.booking_date, c.value_date) for c in read_camt(files.camt053)}
    assert dates["M0002"] == (date(2026, 12, 10), date(2026, 12, 10))
    assert dates["M0001"] == (MONDAY, MONDAY)
