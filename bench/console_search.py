"""The console's search over a million stored events, against bare SQL.

Loads `--events` (1,000,000) events into a fresh PostgreSQL database
(`posgw_bench_search` on 127.0.0.1:5432; bench/console_data.py says what
they are and how they are written), then runs `--searches` searches of each
kind the console offers (card + amount + day with tolerances, RRN,
terminal + STAN, merchant + day, branch + day) through the console's own code,
server side: `read_form` and `run_search` in a fresh session from the
console's `CenterStore`, as `POST /search` runs them. Each is paired with
the bare baseline: the same lookup as one hand-written SQL statement on a
raw psycopg connection, returning the same rows; the pair runs in
alternating order so neither always finds the cache warmed by the other.

It prints p50/p95/p99 per kind for both, their ratio at p95, and ends with

    console search: worst p95 <ms> ms (<kind>) over <n> events; target < 200 ms: met|MISSED

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
    console_ms: list[float]
    bare_ms: list[float]
    rows: int

    def line(self, kind: str) -> str:
        c, b = percentiles(self.console_ms), percentiles(self.bare_ms)
        return (f"{kind:<9}{c[0]:7.1f}{c[1]:7.1f}{c[2]:7.1f}   {b[0]:7.1f}{b[1]:7.1f}"
                f"{b[2]:7.1f}   {c[1] / b[1]:6.2f}x  {self.rows / len(self.console_ms):8.1f}")


def percentiles(samples: Sequence[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def dsn(database: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


def loaded_count(database: str, events: int, seed: int) -> bool:
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
    CenterStore("postgresql+psycopg://" + dsn(database).split("://", 1)[1]).close()
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


def measure(store: CenterStore, bare: psycopg.Connection[Any],
            cases: list[Case], kind: str) -> Timings:
    today = date.today()

    def console(fields: dict[str, str]) -> int:
        form = read_form(fields)  # what POST /search does before it searches
        with store.session() as session:
            return len(run_search(session, form, today))

    def baseline(case: Case) -> int:
        return len(bare.execute(case.sql, case.params, prepare=True).fetchall())

    console_ms, bare_ms, total = [], [], 0
    for n, case in enumerate(cases):
        if n % 2:
            c_ms, c_rows = timed(partial(console, case.fields))
            b_ms, b_rows = timed(partial(baseline, case))
        else:
            b_ms, b_rows = timed(partial(baseline, case))
            c_ms, c_rows = timed(partial(console, case.fields))
        if c_rows != b_rows:
            raise SystemExit(f"{kind}: the console found {c_rows} rows, bare SQL {b_rows}: "
                             f"not the same lookup ({case.fields})")
        console_ms.append(c_ms)
        bare_ms.append(b_ms)
        total += c_rows
    return Timings(console_ms, bare_ms, total)


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
    if args.reload or not loaded_count(args.database, args.events, args.seed):
        lines.append(fill(console, args.database, args.events, args.seed))
    else:
        lines.append(f"reused {args.events:,} events loaded before in {args.database}")
    store = CenterStore("postgresql+psycopg://" + dsn(args.database).split("://", 1)[1])
    try:
        with psycopg.connect(dsn(args.database), autocommit=True) as bare:
            cases = search_cases(bare, args.searches, random.Random(args.seed))
            timings = {kind: measure(store, bare, cases[kind], kind) for kind in KINDS}
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
    worst = max(KINDS, key=lambda kind: percentiles(timings[kind].console_ms)[1])
    worst_ms = percentiles(timings[worst].console_ms)[1]
    verdict = "met" if worst_ms < TARGET_MS else "MISSED"
    return [f"{searches} searches per kind, server side (read_form + run_search, fresh session)",
            f"load average {os.getloadavg()[0]:.2f} at the end",
            "ms       console p50    p95    p99   bare SQL p50    p95    p99   p95 ratio"
            "  rows/search",
            *(timings[kind].line(kind) for kind in KINDS),
            f"console search: worst p95 {worst_ms:.1f} ms ({worst}) over {events:,} events; "
            f"target < {TARGET_MS:.0f} ms: {verdict}"]


if __name__ == "__main__":
    main()
