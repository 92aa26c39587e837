"""What the simulated acquirer approved, as input to its settlement files:
read from a CSV, or generated for a number of merchants and a day.

The sales CSV has the acquirer CSV's columns less fee and net
(`date,merchant_id,terminal_id,rrn,stan,amount,currency`, amounts in major
units with the currency's decimals, a return negative).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from posgw.protocols.currency import minor_unit_digits, parse_decimal_minor
from posgw.simulator.settlement_files import ApprovedSale

SALES_COLUMNS = ("date", "merchant_id", "terminal_id", "rrn", "stan", "amount", "currency")
#: A generated day holds at most this many sales (a bench's month is read day by day).
MAX_GENERATED_SALES = 1_000_000
MAX_SALES_FILE_BYTES = 256 * 1024 * 1024


def read_sales_csv(path: Path) -> list[ApprovedSale]:
    """The sales in `path`; ValueError names the line of the first bad one."""
    if path.stat().st_size > MAX_SALES_FILE_BYTES:
        raise ValueError(f"{path}: over the {MAX_SALES_FILE_BYTES} byte cap")
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file, strict=True)
        missing = set(SALES_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: line 1: missing columns {', '.join(sorted(missing))}")
        sales = []
        for row in reader:
            try:
                sales.append(_sale(row))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}: line {reader.line_num}: {error}") from None
        return sales


def _sale(row: dict[str, str]) -> ApprovedSale:
    currency = row["currency"]
    return ApprovedSale(date.fromisoformat(row["date"]), row["merchant_id"], row["terminal_id"],
                        row["rrn"], row["stan"],
                        parse_decimal_minor(row["amount"], currency, exact=True), currency)


def generated_sales(day: date, merchants: int, per_merchant: int, *, currency: str = "VND",
                    terminals_per_merchant: int = 2, returns_per_mille: int = 20,
                    seed: int = 1) -> Iterator[ApprovedSale]:
    """`per_merchant` sales for each of merchants M0001... on `day`: the same
    seed gives the same sales. About `returns_per_mille` in 1000 are returns
    of a part of an amount. Ids fit the center's: terminal T<mmmm><ttt>,
    RRN 12 digits (yyddd + sequence), STAN 6 digits per terminal."""
    if merchants * per_merchant > MAX_GENERATED_SALES:
        raise ValueError(f"at most {MAX_GENERATED_SALES} sales a day")
    draw = random.Random(seed)
    digits = minor_unit_digits(currency)
    smallest: int = 10_000 if digits == 0 else 10**digits  # 10,000 VND; 1.00 USD
    sequence = 0
    for merchant in range(1, merchants + 1):
        stans = [0] * terminals_per_merchant
        for _ in range(per_merchant):
            sequence += 1
            terminal = draw.randrange(terminals_per_merchant)
            stans[terminal] += 1
            amount = draw.randrange(1, 500) * smallest
            if draw.randrange(1000) < returns_per_mille:
                amount = -max(smallest, amount // 2 // smallest * smallest)
            yield ApprovedSale(day, f"M{merchant:04d}", f"T{merchant:04d}{terminal + 1:03d}",
                               f"{day:%y%j}{sequence:07d}", f"{stans[terminal] % 1_000_000:06d}",
                               amount, currency)
