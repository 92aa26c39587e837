"""The console's dashboard and reconciliation queries over many events on PostgreSQL.

Loads `--events` events (default 1,000,000) spread over 7 days, 20
branches, 200 terminals and every status into a scratch database's
partitioned center_events (generated in SQL: the load is not what is
measured), then times each query the dashboard and the fleet's terminal
page run (center/web/dashboard.py, center/web/fleet.py), against the bare
baseline of the same run: counting one day's events on the day index.

    python bench/dashboard.py [--events N] [--runs 5] [--dsn postgresql://...]

Prints the machine, the load average, and per query its median time in ms
and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.readme import machine
from posgw.center.db import CenterStore
from posgw.center.pg_schema import partition_ddl
from posgw.center.web import dashboard
from posgw.center.web.fleet import terminal_detail
from posgw.center.web.models import create_console_tables

DEFAULT_DSN = os.environ.get("POSGW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
STATUSES = "ARRAY['settled','settled','settled','settled','frozen','declined','reversed','refund']"


def load(store: CenterStore, events: int, today: date) -> None:
    """`events` rows in SQL: day, branch, terminal, status and hour from i."""
    first = today - timedelta(days=6)
    with store.engine.begin() as conn:
        for month in sorted({(first + timedelta(days=d)).replace(day=1) for d in range(7)}):
            conn.execute(text(partition_ddl(month)))
        conn.execute(text(f"""
            INSERT INTO center_events (event_id, topic, branch_id, gateway_id, seq, status, kind,
              terminal_id, merchant_id, stan, rrn, amount_minor, currency, entry_mode,
              occurred_at, occurred_date, payload, received_at)
            SELECT 'bench-' || i, 't', 'B' || lpad((i % 20)::text, 3, '0'), 'gw', i,
              ({STATUSES})[1 + i % 8], 'purchase', 'T' || lpad((i % 200)::text, 7, '0'), 'M1',
              lpad((i % 999999)::text, 6, '0'), lpad(i::text, 12, '0'), 1000 + i % 5000, 'VND',
              'chip', to_char(d, 'YYYY-MM-DD') || 'T' || lpad((i % 24)::text, 2, '0')
              || ':00:00Z', to_char(d, 'YYYY-MM-DD'), '{{}}'::json, now()
            FROM generate_series(1, :n) AS i,
              LATERAL (SELECT CAST(:first AS date) + (i % 7) AS d) AS day"""),
            {"n": events, "first": first})
        conn.execute(text(
            "INSERT INTO center_terminal_status (branch_id, terminal_id, gateway_id, state, "
            "occurred_at, received_at) VALUES ('B001', 'T0000001', 'gw', 'online', :t, :t)"),
            {"t": f"{today.isoformat()}T00:00:00.000000Z"})
        conn.execute(text("ANALYZE center_events"))


def median_ms(query: Callable[[], object], runs: int) -> float:
    query()  # warm the cache: every run then reads the same pages
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        query()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args()
    name = f"posgw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    store = CenterStore(url)
    create_console_tables(store.engine)
    try:
        run(store, args.events, args.runs)
    finally:
        store.close()
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def run(store: CenterStore, events: int, runs: int) -> None:
    today = datetime.now(UTC).date()
    started = time.perf_counter()
    load(store, events, today)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"loaded {events:,} events over 7 days in {time.perf_counter() - started:.1f} s")
    engine, day = store.engine, today.isoformat()

    def baseline() -> object:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM center_events "
                                     "WHERE occurred_date = :d"), {"d": day}).scalar()

    bare = median_ms(baseline, runs)
    print(f"baseline: count one day's events          {bare:8.1f} ms")
    queries: dict[str, Callable[[], object]] = {
        "dashboard: totals per branch and status": lambda: dashboard.today_totals(engine, today),
        "dashboard: transactions per hour": lambda: dashboard.hourly(engine, today),
        "dashboard: freeze rate, 7 days": lambda: dashboard.freeze_days(engine, today),
        "dashboard: quarantine by kind": lambda: dashboard.quarantined_by_kind(engine),
        "fleet: a terminal's totals": lambda: terminal_detail(engine, "B001", "T0000001"),
    }
    for label, query in queries.items():
        took = median_ms(query, runs)
        print(f"{label:42s} {took:8.1f} ms  {took / bare:5.2f}x baseline")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
