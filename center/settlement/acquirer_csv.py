"""The acquirer's settlement report: one CSV line per settled transaction,
read into `AcquirerLine`s.

The layout (docs/settlement.md, "Files: the acquirer CSV"): UTF-8 (a BOM is
allowed), comma-separated, RFC 4180 quoting, a header line naming the
columns

    date,merchant_id,terminal_id,rrn,stan,amount,fee,net,currency

in any order (other columns are ignored), then one line per transaction.
Amounts are decimal text in major units with exactly the currency's minor
digits: "125.00" USD, "125000" VND, "-20.00" for a return. `net` must equal
`amount - fee`. An acquirer whose columns are named otherwise is read with
a mapping `{"our_name": "their_name"}`.

The reader is strict: the first line that is wrong refuses the whole file
with an `AcquirerCsvError` naming its line and column, and nothing of it is
returned (a report half read is a report wrongly matched).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from datetime import date
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from posgw.center.settlement.file_input import FileTooLarge, read_capped
from posgw.center.settlement.records import AcquirerLine
from posgw.protocols.currency import minor_unit_digits, parse_decimal_minor
from posgw.protocols.settlement import ACQUIRER_CSV_COLUMNS

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

#: Bounds: a day of 1,000 merchants is ~100,000 lines and ~10 MB; a month in
#: one file still fits. Past these the file is refused, not read in part.
MAX_CSV_BYTES = 256 * 1024 * 1024
MAX_CSV_LINES = 5_000_000
MAX_FIELD_CHARS = 64  # the longest value of the layout is well under this

_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,31}")  # merchant and terminal ids
_RRN = re.compile(r"[0-9A-Za-z]{1,12}")  # ISO 8583 field 37: an 12
_STAN = re.compile(r"[0-9]{6}")  # ISO 8583 field 11: n 6
_CURRENCY = re.compile(r"[A-Z]{3}")  # ISO 4217 alphabetic
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class AcquirerCsvError(ValueError):
    """A settlement CSV refused: the line (1 = header) and column that are wrong."""

    def __init__(self, reason: str, *, line: int, column: str | None = None):
        self.reason = reason
        self.line = line
        self.column = column
        where = f"line {line}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {reason}")


def read_acquirer_csv(source: str | Path | bytes,
                      mapping: Mapping[str, str] | None = None) -> list[AcquirerLine]:
    """Every line of an acquirer settlement CSV (a path or its bytes), or
    AcquirerCsvError for the first line that breaks the layout."""
    text = _decoded(csv_bytes(source))
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(rows, None)
        if header is None:
            raise AcquirerCsvError("the file is empty: no header", line=1)
        positions = _column_positions(header, mapping or {})
        return list(_lines(rows, positions, len(header)))
    except csv.Error as error:
        raise AcquirerCsvError(f"not valid CSV: {error}", line=rows.line_num) from None


def csv_bytes(source: str | Path | bytes) -> bytes:
    """The file's bytes, read once and at most MAX_CSV_BYTES of them."""
    try:
        return read_capped(source, MAX_CSV_BYTES)
    except FileTooLarge:
        raise AcquirerCsvError(f"the file is over the {MAX_CSV_BYTES} byte cap",
                               line=1) from None


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise AcquirerCsvError("not UTF-8 text", line=line) from None


def _column_positions(header: list[str], mapping: Mapping[str, str]) -> dict[str, int]:
    unknown = sorted(set(mapping) - set(ACQUIRER_CSV_COLUMNS))
    if unknown:
        raise AcquirerCsvError(f"the mapping names no column of ours: {', '.join(unknown)}",
                               line=1)
    names = [name.strip() for name in header]
    positions: dict[str, int] = {}
    for ours in ACQUIRER_CSV_COLUMNS:
        theirs = mapping.get(ours, ours)
        if names.count(theirs) != 1:
            found = "missing" if theirs not in names else "given more than once"
            raise AcquirerCsvError(f"header: column {theirs!r} is {found}", line=1,
                                   column=theirs)
        positions[ours] = names.index(theirs)
    return positions


def _lines(rows: CsvReader, positions: dict[str, int],
           width: int) -> Iterator[AcquirerLine]:
    pick = itemgetter(*(positions[column] for column in ACQUIRER_CSV_COLUMNS))
    for row in rows:
        line_no = rows.line_num  # physical lines: a quoted field may span several
        if line_no > MAX_CSV_LINES:
            raise AcquirerCsvError(f"more than {MAX_CSV_LINES} lines", line=line_no)
        if len(row) != width:
            raise AcquirerCsvError(f"{len(row)} fields where the header has {width}",
                                   line=line_no)
        values = pick(row)
        line = _well_formed_line(values, line_no)
        yield line if line is not None else _line(dict(zip(ACQUIRER_CSV_COLUMNS, values,
                                                               strict=True)), line_no)


def _well_formed_line(values: tuple[str, ...], line_no: int) -> AcquirerLine | None:
    """The line, when one pattern finds every value well-formed (the common
    case, several times faster than checking value by value); None lets
    `_line` find and name what is wrong."""
    day, merchant, terminal, rrn, stan, amount, fee, net, currency = values
    if not (_CURRENCY.fullmatch(currency)
            and _line_pattern(currency).fullmatch("\x1f".join(values))):
        return None
    amount_minor, fee_minor, net_minor = (int(text.replace(".", ""))
                                          for text in (amount, fee, net))
    try:
        business_date = _calendar_date(day)
    except ValueError:
        return None
    if net_minor != amount_minor - fee_minor:
        return None
    return AcquirerLine(line_no, business_date, merchant, terminal, rrn, stan, amount_minor,
                        fee_minor, net_minor, currency)


@lru_cache(maxsize=64)
def _line_pattern(currency: str) -> re.Pattern[str]:
    """A whole line, its values joined by US (0x1f, which no value may hold)."""
    amount = _exact_amount(currency).pattern
    parts = (_DATE.pattern, _ID.pattern, _ID.pattern, _RRN.pattern, _STAN.pattern, amount,
             amount, amount, re.escape(currency))
    return re.compile("\x1f".join(f"(?:{part})" for part in parts))


def _line(values: dict[str, str], line_no: int) -> AcquirerLine:
    for column, value in values.items():
        if len(value) > MAX_FIELD_CHARS:
            raise AcquirerCsvError(f"longer than {MAX_FIELD_CHARS} characters", line=line_no,
                                   column=column)
    currency = _matching(values, "currency", _CURRENCY, line_no)
    amount, fee, net = (_amount(values, column, currency, line_no)
                        for column in ("amount", "fee", "net"))
    if net != amount - fee:
        raise AcquirerCsvError(f"net {values['net']} is not amount - fee "
                               f"({values['amount']} - {values['fee']})", line=line_no,
                               column="net")
    return AcquirerLine(
        line_no=line_no,
        business_date=_date(values, line_no),
        merchant_id=_matching(values, "merchant_id", _ID, line_no),
        terminal_id=_matching(values, "terminal_id", _ID, line_no),
        rrn=_matching(values, "rrn", _RRN, line_no),
        stan=_matching(values, "stan", _STAN, line_no),
        amount_minor=amount,
        fee_minor=fee,
        net_minor=net,
        currency=currency,
    )


def _matching(values: dict[str, str], column: str, pattern: re.Pattern[str],
              line_no: int) -> str:
    value = values[column]
    if not pattern.fullmatch(value):
        raise AcquirerCsvError(f"{value!r} is not a valid {column}", line=line_no,
                               column=column)
    return value


def _amount(values: dict[str, str], column: str, currency: str, line_no: int) -> int:
    text = values[column]
    if _exact_amount(currency).fullmatch(text):
        # The common case, 3 times a line: "125.00" USD is int("12500").
        return int(text.replace(".", ""))
    try:
        return parse_decimal_minor(text, currency, exact=True)  # raises, saying what is wrong
    except ValueError as error:
        raise AcquirerCsvError(str(error), line=line_no, column=column) from None


@lru_cache(maxsize=64)
def _exact_amount(currency: str) -> re.Pattern[str]:
    digits = minor_unit_digits(currency)
    return re.compile(r"-?[0-9]{1,30}" + (rf"\.[0-9]{{{digits}}}" if digits else ""))


def _date(values: dict[str, str], line_no: int) -> date:
    text = _matching(values, "date", _DATE, line_no)
    try:
        return _calendar_date(text)
    except ValueError:
        raise AcquirerCsvError(f"{text!r} is not a calendar date", line=line_no,
                               column="date") from None


@lru_cache(maxsize=1024)  # a file holds a few business days, read on every line
def _calendar_date(text: str) -> date:
    return date.fromisoformat(text)
