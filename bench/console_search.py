"""The console's search over a million stored events, against bare SQL.

Loads `--events` (1,000,000) events into a fresh PostgreSQL database
(`posgw_bench_search` on 127.0.0.1:5432; bench/console_data.py says what
they are and how they are written), then runs `--searches` searches of each
kind the console offers (card + amount + day with tolerances, RRN,
terminal + STAN, merchant + day, branch + day) through the console's own code,
server side, twice: `read_form` and `run_search` in a fresh session from
the console's `CenterStore`, as `POST /search` runs them; and the whole
`POST /search` route of the real app, timed inside it (bench/console_route.py:
session, CSRF, search, audit row, page). Each is compared with the bare
baseline: the same lookup as one hand-written SQL statement on a raw
psycopg connection, returning the same rows; the three take turns at going
first, so none always finds the cache warmed by another.

It prints p50/p95/p99 per kind for the three, the ratios at p95, and ends with

    console search: worst p95 <ms> ms (<kind>, POST /search) over <n> events;
        target < 200 ms: met|MISSED

A database loaded before with the same --events and --seed is reused
(--reload loads it again); --drop drops it at the end.

    python bench/console_search.py [--events 1000000] [--searches 300] [--drop] [--update-readme]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.console_data import first_day, load, store_rows
from bench.console_queries import Case, search_cases
from bench.console_route import RouteSearch
from bench.readme import machine, update_readmes
from posgw.center.db import CenterStore
from posgw.center.web.search import read_form, run_search
from posgw.gateway.security import generate_keys, load_keys

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_MS = 200.0
GENERATOR = 1  # bump when console_data.py changes what it stores: a stale database reloads
#: The console's four kinds, "place" as its two forms: by merchant, by branch.
KINDS = ("card", "rrn", "terminal", "merchant", "branch")


@dataclass(frozen=True, slots=True)
class Timings:
    search_ms: list[float]  # read_form + run_search
    route_ms: list[float]  # the whole POST /search, inside the server
    bare_ms: list[float]
    rows: int

    def line(self, kind: str) -> str:
        s, r, b = (percentiles(self.search_ms), percentiles(self.route_ms),
                   percentiles(self.bare_ms))
        cells = [f"{ms:7.1f}" for ms in (*s, *r, *b)]
        cells += [f"{s[1] / b[1]:7.2f}x", f"{r[1] / b[1]:7.2f}x",
                  f"{self.rows / len(self.search_ms):7.1f}"]
        return f"{kind:<9}" + "".join(cells)


def percentiles(samples: Sequence[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def dsn(database: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


def store_url(database: str) -> str:
    """The same database as the center names it (SQLAlchemy, psycopg 3)."""
    return dsn(database).replace("postgresql://", "postgresql+psycopg://", 1)


def already_loaded(database: str, events: int, seed: int) -> bool:
    """Whether `database` holds this run's events already (its marker row says so)."""
    try:
        with psycopg.connect(dsn(database), connect_timeout=10) as conn:
            row = conn.execute("SELECT events, seed, generator FROM bench_console_search"
                               ).fetchone()
    except psycopg.Error:
        return False
    return row == (events, seed, GENERATOR)


def fresh_database(database: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        admin.execute(f'CREATE DATABASE "{database}"')


def fill(console: Console, database: str, events: int, seed: int) -> str:
    """Load the events; returns what to print about it."""
    fresh_database(database)
    CenterStore(store_url(database)).close()  # the center's tables, partitioned
    keys = load_keys(generate_keys(Path(tempfile.mkdtemp(prefix="posgw-bench-")) / "k").parent)
    started = time.perf_counter()
    columns = (TextColumn("loading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("load", total=events)
        stored = load(dsn(database), store_rows(keys, events, seed, first_day(datetime.now(UTC))),
                      lambda n: progress.advance(bar, n))
    with psycopg.connect(dsn(database), autocommit=True) as conn:
        conn.execute("ANALYZE")  # as autovacuum would soon after a month of ingest
        conn.execute("CREATE TABLE bench_console_search "
                     "(events integer, seed integer, generator integer)")
        conn.execute("INSERT INTO bench_console_search VALUES (%s, %s, %s)",
                     (events, seed, GENERATOR))
    took = time.perf_counter() - started
    return (f"loaded {stored:,} events in {took:.0f} s ({stored / took:,.0f} events/s, "
            "signed and written by the ingest's PostgresWriter)")


def timed(call: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    rows = call()
    return (time.perf_counter() - started) * 1000, rows


def measure(store: CenterStore, route: RouteSearch, bare: psycopg.Connection[Any],
            cases: list[Case], kind: str) -> Timings:
    today = date.today()

    def console(fields: dict[str, str]) -> int:
        form = read_form(fields)  # what POST /search does before it searches
        with store.session() as session:
            return len(run_search(session, form, today))

    def baseline(case: Case) -> int:
        return len(bare.execute(case.sql, case.params, prepare=True).fetchall())

    samples: dict[str, list[float]] = {"search": [], "route": [], "bare": []}
    total = 0
    for n, case in enumerate(cases):
        calls = {"search": partial(timed, partial(console, case.fields)),
                 "route": partial(route.search, case.fields),
                 "bare": partial(timed, partial(baseline, case))}
        order = list(calls)[n % 3:] + list(calls)[:n % 3]  # none always first
        found = {name: calls[name]() for name in order}
        rows = {name: count for name, (_, count) in found.items()}
        if len(set(rows.values())) != 1:
            raise SystemExit(f"{kind}: rows found {rows}: not the same lookup ({case.fields})")
        for name, (ms, _) in found.items():
            samples[name].append(ms)
        total += rows["bare"]
    return Timings(samples["search"], samples["route"], samples["bare"], total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=300, help="per kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default="posgw_bench_search")
    parser.add_argument("--reload", action="store_true", help="load again even if loaded")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)
    lines = [f"machine: {machine()}, load average {os.getloadavg()[0]:.2f} at start"]
    if args.reload or not already_loaded(args.database, args.events, args.seed):
        lines.append(fill(console, args.database, args.events, args.seed))
    else:
        lines.append(f"reused {args.events:,} events loaded before in {args.database}")
    store = CenterStore(store_url(args.database))
    try:
        with (psycopg.connect(dsn(args.database), autocommit=True) as bare,
              RouteSearch(store) as route):
            cases = search_cases(bare, args.searches, random.Random(args.seed))
            timings = {kind: measure(store, route, bare, cases[kind], kind) for kind in KINDS}
    finally:
        store.close()
    lines += report(timings, args.events, args.searches)
    if args.drop:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        lines.append(f"dropped {args.database}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.update_readme:
        command = " ".join(["python bench/console_search.py",
                            *(arg for arg in sys.argv[1:] if arg != "--update-readme")])
        for page in update_readmes("console-search", command, text):
            print(f"wrote {page}")


def report(timings: dict[str, Timings], events: int, searches: int) -> list[str]:
    worst = max(KINDS, key=lambda kind: percentiles(timings[kind].route_ms)[1])
    worst_ms = percentiles(timings[worst].route_ms)[1]
    verdict = "met" if worst_ms < TARGET_MS else "MISSED"
    return [f"{searches} searches per kind, server side: run_search (read_form + run_search in "
            "a fresh session), POST /search (the whole route, timed inside the app), "
            "bare SQL (the same rows)",
            f"load average {os.getloadavg()[0]:.2f} at the end",
            f"{'':<9}{'run_search (ms)':^21}{'POST /search (ms)':^21}{'bare SQL (ms)':^21}"
            f"{'p95 / bare':^16}",
            f"{'kind':<9}" + "    p50    p95    p99" * 3 + f"{'search':>8}{'route':>8}{'rows':>7}",
            *(timings[kind].line(kind) for kind in KINDS),
            f"console search: worst p95 {worst_ms:.1f} ms ({worst}, POST /search) over "
            f"{events:,} events; "
            f"target < {TARGET_MS:.0f} ms: {verdict}"]


if __name__ == "__main__":
    main()
