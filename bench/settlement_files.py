"""Reading a day's settlement files, against a bare baseline in the same run.

    python bench/settlement_files.py [--merchants 1000] [--per-merchant 100]

Writes one simulated day (`--merchants` x `--per-merchant` sales: the
acquirer CSV and the bank's camt.053) to a temporary folder, then times,
best of three rounds:

- `read_acquirer_csv` against the bare `csv.reader` over the same bytes
  (what any reader pays), and prints lines/s and the ratio;
- `read_camt` (parse, XSD validation, credits) against a bare lxml parse.

A month of 1,000 merchants is about 30 such days: multiply.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lxml import etree

from bench.readme import machine, update_readmes
from posgw.center.settlement.acquirer_csv import read_acquirer_csv
from posgw.center.settlement.camt import read_camt, safe_parser
from posgw.simulator.settlement_files import write_settlement_files
from posgw.simulator.settlement_sales import generated_sales


def best_of(rounds: int, work: Callable[[], object]) -> float:
    """The fastest of `rounds` runs in seconds: noise only ever slows a round."""
    best = float("inf")
    for _ in range(rounds):
        begin = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - begin)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--merchants", type=int, default=1000)
    parser.add_argument("--per-merchant", type=int, default=100)
    parser.add_argument("--update-readme", action="store_true",
                        help="write this run's figures into bench/README.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="posgw-bench-settlement-") as folder:
        sales = list(generated_sales(date(2026, 12, 4), args.merchants, args.per_merchant))
        files = write_settlement_files(Path(folder), sales,
                                       created=datetime(2026, 12, 7, 6, tzinfo=UTC))
        csv_bytes = files.acquirer_csv.read_bytes()
        camt_bytes = files.camt053.read_bytes()
        bare_csv = best_of(3, lambda: list(csv.reader(io.StringIO(csv_bytes.decode()))))
        ours_csv = best_of(3, lambda: read_acquirer_csv(csv_bytes))
        bare_xml = best_of(3, lambda: etree.fromstring(camt_bytes, safe_parser()))
        ours_xml = best_of(3, lambda: read_camt(camt_bytes))
    lines = len(sales)
    report = [
        f"machine: {machine()}",
        f"settlement files: {lines:,} CSV lines ({len(csv_bytes) / 1e6:.1f} MB), "
        f"{len(files.credits):,} camt.053 credits ({len(camt_bytes) / 1e6:.1f} MB)",
        f"acquirer CSV: {lines / ours_csv:,.0f} lines/s, bare csv.reader "
        f"{lines / bare_csv:,.0f} lines/s, ratio {ours_csv / bare_csv:.1f}x",
        f"camt.053: {ours_xml * 1000:.0f} ms, bare lxml parse {bare_xml * 1000:.0f} ms, "
        f"ratio {ours_xml / bare_xml:.1f}x",
    ]
    print("\n".join(report))
    if args.update_readme:
        update_readmes("settlement_files", "python bench/settlement_files.py",
                       "".join(line + "\n" for line in report))


if __name__ == "__main__":
    main()
