"""The acquirer settlement CSV: the documented layout reads, a mapping
reads other column names, and the first wrong value refuses the whole file
with its line and column."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posgw.center.settlement import acquirer_csv
from posgw.center.settlement.acquirer_csv import AcquirerCsvError, read_acquirer_csv
from posgw.protocols.settlement import ACQUIRER_CSV_COLUMNS

HEADER = "date,merchant_id,terminal_id,rrn,stan,amount,fee,net,currency\n"
SALE_VND = "2026-12-04,M0001,T0000001,634012000001,000001,1250000,7500,1242500,VND\n"
SALE_USD = "2026-12-04,M0002,T0000002,634012000002,000002,125.00,0.75,124.25,USD\n"
RETURN_USD = "2026-12-04,M0002,T0000002,634012000003,000003,-20.00,0.00,-20.00,USD\n"


def csv_bytes(*lines: str) -> bytes:
    return (HEADER + "".join(lines)).encode()


def test_documented_layout_reads_in_minor_units(tmp_path: Path) -> None:
    path = tmp_path / "settlement.csv"
    path.write_bytes(csv_bytes(SALE_VND, SALE_USD, RETURN_USD))
    lines = read_acquirer_csv(path)
    assert [(line.line_no, line.amount_minor, line.fee_minor, line.net_minor, line.currency)
            for line in lines] == [
        (2, 1_250_000, 7_500, 1_242_500, "VND"),
        (3, 12_500, 75, 12_425, "USD"),
        (4, -2_000, 0, -2_000, "USD"),
    ]
    assert (lines[0].business_date, lines[0].merchant_id, lines[0].terminal_id,
            lines[0].rrn, lines[0].stan) == (date(2026, 12, 4), "M0001", "T0000001",
                                             "634012000001", "000001")


def test_columns_in_another_order_and_extra_columns_are_read() -> None:
    reordered = ("currency,net,fee,amount,stan,rrn,terminal_id,merchant_id,date,batch\n"
                 "USD,124.25,0.75,125.00,000002,634012000002,T0000002,M0002,2026-12-04,B7\n")
    (line,) = read_acquirer_csv(reordered.encode())
    assert (line.amount_minor, line.net_minor, line.rrn) == (12_500, 12_425, "634012000002")


def test_mapping_reads_an_acquirer_with_other_column_names() -> None:
    theirs = ("TxnDate,MID,TID,RetrievalRef,Trace,Gross,MDR,NetAmount,Ccy\n"
              + SALE_USD)
    mapping = {"date": "TxnDate", "merchant_id": "MID", "terminal_id": "TID",
               "rrn": "RetrievalRef", "stan": "Trace", "amount": "Gross", "fee": "MDR",
               "net": "NetAmount", "currency": "Ccy"}
    (line,) = read_acquirer_csv(theirs.encode(), mapping)
    assert (line.merchant_id, line.fee_minor) == ("M0002", 75)


def test_mapping_naming_no_column_of_ours_is_refused() -> None:
    with pytest.raises(AcquirerCsvError, match="names no column of ours: gross"):
        read_acquirer_csv(csv_bytes(SALE_USD), {"gross": "amount"})


def test_byte_order_mark_is_allowed() -> None:
    assert len(read_acquirer_csv(b"\xef\xbb\xbf" + csv_bytes(SALE_USD))) == 1


@pytest.mark.parametrize("bad_line, column, reason", [
    (SALE_USD.replace("124.25", "124.30"), "net", "not amount - fee"),
    (SALE_USD.replace("125.00", "125"), "amount", "exactly 2 decimals"),
    (SALE_VND.replace("1250000", "1250000.00"), "amount", "exactly 0 decimals"),
    (SALE_USD.replace("125.00", "\"1,125.00\""), "amount", "not a decimal amount"),
    (SALE_USD.replace("0.75", "7.5e-1"), "fee", "not a decimal amount"),
    (SALE_USD.replace("000002", "2"), "stan", "not a valid stan"),
    (SALE_USD.replace("634012000002", "6340-1200"), "rrn", "not a valid rrn"),
    (SALE_USD.replace("USD", "usd"), "currency", "not a valid currency"),
    (SALE_USD.replace("2026-12-04", "2026-02-30"), "date", "not a calendar date"),
    (SALE_USD.replace("2026-12-04", "04/12/2026"), "date", "not a valid date"),
    (SALE_USD.replace("M0002", ""), "merchant_id", "not a valid merchant_id"),
    (SALE_USD.replace("T0000002", "T" * 65), "terminal_id", "longer than 64"),
])
def test_wrong_value_refuses_the_file_with_line_and_column(bad_line: str, column: str,
                                                            reason: str) -> None:
    with pytest.raises(AcquirerCsvError, match=reason) as refused:
        read_acquirer_csv(csv_bytes(SALE_VND, SALE_USD, bad_line, RETURN_USD))
    assert (refused.value.line, refused.value.column) == (4, column)


def test_wrong_field_count_and_blank_line_are_refused_with_their_line() -> None:
    with pytest.raises(AcquirerCsvError, match="8 fields where the header has 9") as refused:
        read_acquirer_csv(csv_bytes(SALE_USD, SALE_USD.replace(",USD", "")))
    assert refused.value.line == 3
    with pytest.raises(AcquirerCsvError, match="0 fields") as refused:
        read_acquirer_csv(csv_bytes(SALE_USD, "\n", SALE_USD))
    assert refused.value.line == 3


def test_line_numbers_count_physical_lines_of_quoted_fields() -> None:
    quoted = SALE_USD.replace("M0002", '"M\n0002"')
    with pytest.raises(AcquirerCsvError, match="not a valid merchant_id") as refused:
        read_acquirer_csv(csv_bytes(SALE_USD, quoted))
    assert refused.value.line == 4  # the line where the record ends


@pytest.mark.parametrize("header, reason", [
    (HEADER.replace("rrn,", ""), "column 'rrn' is missing"),
    (HEADER.replace("currency", "rrn"), "column 'rrn' is given more than once"),
])
def test_header_without_a_column_is_refused(header: str, reason: str) -> None:
    with pytest.raises(AcquirerCsvError, match=reason) as refused:
        read_acquirer_csv((header + SALE_USD).encode())
    assert refused.value.line == 1


def test_empty_and_non_utf8_files_are_refused() -> None:
    with pytest.raises(AcquirerCsvError, match="empty"):
        read_acquirer_csv(b"")
    with pytest.raises(AcquirerCsvError, match="not UTF-8") as refused:
        read_acquirer_csv(csv_bytes(SALE_USD) + b"2026-12-04,M\xe9,T1\n")
    assert refused.value.line == 3


def test_oversized_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acquirer_csv, "MAX_CSV_BYTES", 1024)  # the real cap is 256 MiB
    path = tmp_path / "big.csv"
    path.write_bytes(csv_bytes(*[SALE_USD] * 20))
    with pytest.raises(AcquirerCsvError, match="over the 1024 byte cap"):
        read_acquirer_csv(path)


def test_too_many_lines_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acquirer_csv, "MAX_CSV_LINES", 3)
    with pytest.raises(AcquirerCsvError, match="more than 3 lines") as refused:
        read_acquirer_csv(csv_bytes(SALE_USD, SALE_USD, SALE_USD))
    assert refused.value.line == 4


VALUE = st.one_of(st.sampled_from(["2026-12-04", "2026-02-30", "M0001", "T0000001",
                                   "634012000001", "000001", "125.00", "125", "0.75",
                                   "124.25", "-20.00", "USD", "VND", "usd", "", "1.5",
                                   "M 1", "x\x1fy", "٣"]),
                  st.text(max_size=8))


GOOD_LINES = [tuple(line.strip().split(",")) for line in (SALE_VND, SALE_USD, RETURN_USD)]


@given(st.sampled_from(GOOD_LINES),
       st.dictionaries(st.integers(0, 8), VALUE, max_size=2))
def test_fast_path_agrees_with_the_value_by_value_check(good: tuple[str, ...],
                                                         changes: dict[int, str]) -> None:
    """The one-pattern fast path accepts only what the value-by-value check
    accepts, and reads it the same (a good line with up to two values changed)."""
    values = tuple(changes.get(index, value) for index, value in enumerate(good))
    fast = acquirer_csv._well_formed_line(values, 2)
    try:
        slow = acquirer_csv._line(dict(zip(ACQUIRER_CSV_COLUMNS, values, strict=True)), 2)
    except AcquirerCsvError:
        assert fast is None
    else:
        assert fast == slow  # nothing the check accepts is left to the slow path
