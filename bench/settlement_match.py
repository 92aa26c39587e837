"""Settlement matching of one month, against one hand-written join.

A fresh PostgreSQL database on 127.0.0.1:5432 (created, dropped after)
holds one month of `--merchants` merchants (1,000) selling `--per-day`
times a day (100) for `--days` days (30): about 3 million events in
`center_events`, the acquirer's line for each, and one bank credit per
merchant-day, loaded with COPY. Three faults are injected (a line settled
twice, a credit missing, a fee above the plan) so matching has something
to find. Then, in this order:

- the baseline: ONE hand-written statement over the month, the bare
  transaction join (lines without an event, events without a line, lines
  settled twice, by terminal + RRN + amount), no standing, plans or credits;
- posgw: `run_matching` over the month (day by day: the per-transaction
  findings, the fee and the credit checks, cases opened), timed, its
  Python heap peak by tracemalloc, the process's peak RSS by getrusage.

It ends with

    settlement match: <s> s for <n> transactions (<r>x the bare join), peak <m> MiB

    python bench/settlement_match.py [--merchants 1000 --per-day 100 --days 30] [--update-readme]
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.readme import machine, update_readmes
from posgw.center.calendar import WorkingCalendar
from posgw.center.config import SettlementConfig
from posgw.center.db import CenterStore
from posgw.center.pg_schema import partition_ddl
from posgw.center.settlement.fees import FeePlan
from posgw.center.settlement.match import run_matching

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
FIRST_DAY = date(2026, 11, 1)
PLAN = FeePlan(date(2026, 1, 1))
CALENDAR = WorkingCalendar.of()
BARE_JOIN = """
WITH ev AS (SELECT terminal_id, rrn, amount_minor FROM center_events
            WHERE occurred_date BETWEEN %(first)s AND %(last)s AND status = 'settled'),
     ln AS (SELECT terminal_id, rrn, amount_minor, COUNT(*) AS n FROM settlement_acquirer_lines
            WHERE business_date BETWEEN %(first)s AND %(last)s
            GROUP BY terminal_id, rrn, amount_minor)
SELECT
  (SELECT COUNT(*) FROM ln LEFT JOIN ev USING (terminal_id, rrn, amount_minor)
   WHERE ev.rrn IS NULL),
  (SELECT COUNT(*) FROM ev LEFT JOIN ln USING (terminal_id, rrn, amount_minor)
   WHERE ln.rrn IS NULL),
  (SELECT COUNT(*) FROM ln WHERE n > 1)
"""


def sale_amount(n: int) -> int:
    return 10_000 + (n * 7_919) % 2_000_000


def days_of(count: int) -> list[date]:
    return [FIRST_DAY + timedelta(days=i) for i in range(count)]


def event_rows(merchants: int, per_day: int, days: list[date]) -> Iterator[tuple[object, ...]]:
    n = 0
    for day in days:
        stamp = f"{day.isoformat()}T10:00:00Z"
        for m in range(merchants):
            for _ in range(per_day):
                n += 1
                yield (f"ev-{n}", "pos/v1/B001/T/tx", "B001", "gw-bench", n, "settled",
                       "purchase", f"T{m:05d}", f"M{m:05d}", f"{n % 1_000_000:06d}",
                       f"{n:012d}", "A1B2C3", "00", sale_amount(n), "VND", "476173******0010",
                       "0010", None, "chip", stamp, day.isoformat(), "{}", "2026-12-01T00:00:00Z")


def line_rows(merchants: int, per_day: int, days: list[date], file_id: int,
              fee_merchant: str, twice: int) -> Iterator[tuple[object, ...]]:
    n = 0
    for day in days:
        for m in range(merchants):
            for _ in range(per_day):
                n += 1
                amount = sale_amount(n)
                fee = PLAN.fee_minor(amount) + (100 if f"M{m:05d}" == fee_merchant else 0)
                row = (file_id, n, 1, day.isoformat(), f"M{m:05d}", f"T{m:05d}", f"{n:012d}",
                       f"{n % 1_000_000:06d}", amount, fee, amount - fee, "VND")
                yield row
                if n == twice:
                    yield (*row[:2], 2, *row[3:])


def credit_rows(merchants: int, per_day: int, days: list[date], file_id: int,
                missing: str) -> Iterator[tuple[object, ...]]:
    n = 0
    for day in days:
        value_date = CALENDAR.add_working_days(day, 1).isoformat()
        for m in range(merchants):
            net = 0
            for _ in range(per_day):
                n += 1
                net += sale_amount(n) - PLAN.fee_minor(sale_amount(n))
            merchant = f"M{m:05d}"
            if merchant == missing and day == days[0]:
                continue
            yield (file_id, f"BANK-{merchant}-{day:%Y%m%d}", f"9704******{m:04d}", merchant,
                   day.isoformat(), net, "VND", value_date, value_date,
                   f"POSGW SETTLE {merchant} {day.isoformat()}")


def copy(conn: psycopg.Connection, table: str, columns: str,
         rows: Iterator[tuple[object, ...]]) -> int:
    count = 0
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as writer:
        for row in rows:
            writer.write_row(row)
            count += 1
    return count


def load(dsn: str, merchants: int, per_day: int, days: list[date]) -> int:
    with psycopg.connect(dsn) as conn:
        conn.execute(partition_ddl(FIRST_DAY.replace(day=1)))
        conn.execute("INSERT INTO settlement_merchants SELECT 'M' || lpad(g::text, 5, '0'), "
                     "'Merchant ' || g, 'B001', '9704******' || lpad(g::text, 4, '0'), 'VND', "
                     "now() FROM generate_series(0, %s) g", (merchants - 1,))
        conn.execute("INSERT INTO settlement_fee_plans (merchant_id, effective_from, rate_ppm, "
                     "fixed_minor, set_at) SELECT merchant_id, '2026-01-01', 6000, 0, now() "
                     "FROM settlement_merchants")
        files = [conn.execute("INSERT INTO settlement_files (sha256, kind, name, records, "
                              "stored, imported_at) VALUES (%s, %s, %s, 0, 0, now()) "
                              "RETURNING id", (uuid.uuid4().hex, kind, kind)).fetchone()
                 for kind in ("acquirer-csv", "camt")]
        line_file, camt_file = (int(row[0]) for row in files if row is not None)
        events = copy(conn, "center_events", "event_id, topic, branch_id, gateway_id, seq, "
                      "status, kind, terminal_id, merchant_id, stan, rrn, auth_code, "
                      "response_code, amount_minor, currency, pan_masked, pan_last4, pan_token, "
                      "entry_mode, occurred_at, occurred_date, payload, received_at",
                      event_rows(merchants, per_day, days))
        copy(conn, "settlement_acquirer_lines", "file_id, line_no, occurrence, business_date, "
             "merchant_id, terminal_id, rrn, stan, amount_minor, fee_minor, net_minor, currency",
             line_rows(merchants, per_day, days, line_file, "M00007", twice=4_242))
        copy(conn, "settlement_bank_credits", "file_id, entry_ref, account_masked, merchant_id, "
             "business_date, amount_minor, currency, booking_date, value_date, reference",
             credit_rows(merchants, per_day, days, camt_file, "M00011"))
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return events


def bare_join(dsn: str, days: list[date]) -> tuple[float, tuple[int, ...]]:
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        row = conn.execute(BARE_JOIN, {"first": days[0].isoformat(),
                                       "last": days[-1].isoformat()}).fetchone()
        return time.perf_counter() - started, tuple(row or ())


def posgw_matching(url: str, days: list[date]) -> tuple[float, int, dict[str, int]]:
    store = CenterStore(url)
    try:
        tracemalloc.start()
        started = time.perf_counter()
        result = run_matching(store.engine, days[0], days[-1], calendar=CALENDAR,
                              settlement=SettlementConfig(), as_of=days[-1] + timedelta(days=30))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        store.close()
    return elapsed, peak, dict(result.opened)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--merchants", type=int, default=1000)
    parser.add_argument("--per-day", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    name = f"posgw_bench_settle_{uuid.uuid4().hex[:8]}"
    out = io.StringIO()

    def say(line: str) -> None:
        print(line, flush=True)
        out.write(line + "\n")

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        CenterStore(url).close()  # the tables, as the center makes them
        days = days_of(args.days)
        started = time.perf_counter()
        count = load(f"postgresql://postgres@127.0.0.1:5432/{name}", args.merchants,
                     args.per_day, days)
        print(f"loaded {count:,} events and their lines in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        say(f"machine: {machine()}, PostgreSQL on 127.0.0.1")
        say(f"month: {args.merchants:,} merchants x {args.per_day} sales x {args.days} days "
            f"= {count:,} transactions, {count:,} acquirer lines, "
            f"{args.merchants * args.days:,} credits")
        bare_s, bare = bare_join(f"postgresql://postgres@127.0.0.1:5432/{name}", days)
        say(f"bare join (one statement)         : {bare_s:7.1f} s  (unknown {bare[0]}, "
            f"missing {bare[1]}, twice {bare[2]})")
        posgw_s, peak, opened = posgw_matching(url, days)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        label = f"posgw run_matching ({args.days} days)"
        say(f"{label:<34}: {posgw_s:7.1f} s  "
            f"(cases {', '.join(f'{k} {v}' for k, v in sorted(opened.items()))})")
        say(f"python heap peak while matching   : {peak / 2**20:7.1f} MiB; process peak RSS "
            f"{rss:.0f} MiB")
        say(f"settlement match: {posgw_s:.1f} s for {count:,} transactions "
            f"({posgw_s / bare_s:.1f}x the bare join), peak {peak / 2**20:.1f} MiB")
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    if args.update_readme:
        update_readmes("settlement", "python bench/settlement_match.py", out.getvalue())


if __name__ == "__main__":
    main()
