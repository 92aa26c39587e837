"""Soak: paced mixed traffic over serial, USB and TCP terminals while the
broker, the gateway, the centers and the centers' PostgreSQL are crashed and
started again; at the end the center must hold exactly the ledger's final
transactions — none lost, none twice — and the report says how long after
the traffic it took to hold them all.

    python bench/soak.py --minutes 10                                   # every fault, SQLite
    python bench/soak.py --minutes 10 --centers 2 --postgres            # the issue-16 soak

What runs (bench/soak_stack.py): a private mosquitto with persistence, the
gateway as its own process (`posgw run`, SQLite synchronous=FULL, upstream
ISO 8583 to the acquirer simulator), --centers center processes (`posgw
center`, each its own client id, one share group when more than one) on
SQLite or, with --postgres, on a private PostgreSQL server, and in this
process the acquirer simulator and the terminals: one on a pty serial line,
one on an emulated USB device reached by the gateway's pyusb through a
loopback relay, and --tcp-terminals over TCP. The terminals
(bench/soak_traffic.py) share one open-loop schedule at --rate, redial and
retransmit when an answer is lost. The faults (bench/soak_faults.py), each
on its own interval: broker SIGTERM and broker SIGKILL (back after
--broker-outage on the same port), gateway SIGKILL, each center SIGKILLed
while the center database grows, PostgreSQL crashed (`pg_ctl stop -m
immediate`, back after --postgres-outage); options in bench/soak_options.py.
After the traffic the outbox drains, the center catches up (time to
complete), and the ledger is compared with the center
(bench/soak_report.py). Exit status 0 only when nothing was lost or doubled
(1 otherwise; 2 when the soak could not run, e.g. without mosquitto, or
with --postgres and no PostgreSQL binaries).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.readme import machine, update_readmes
from bench.schema_cost import schema_check_us, stored_payloads
from bench.soak_faults import (
    Faults,
    broker_outages,
    kill_center_every,
    kill_gateway_every,
    restart_postgres_every,
    stored_now,
)
from bench.soak_options import command_line, parse_args
from bench.soak_report import SoakReport, compare, ledger_count, milliseconds
from bench.soak_stack import (
    GATEWAY_ID,
    MERCHANT,
    SERIAL_PROFILE,
    SERIAL_TERMINAL,
    TCP_PROFILE,
    USB_PROFILE,
    USB_TERMINAL,
    SoakStack,
    center_counts,
    find_mosquitto,
    soak_stack,
)
from bench.soak_traffic import (
    DurableTerminal,
    Pacer,
    TerminalSpec,
    TrafficLog,
    durable_terminal,
    run_terminal,
    tcp_redial,
)
from posgw.center.db import CenterStore
from posgw.drivers.base import Transport
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.store import Store
from posgw.sandbox.demo.summary import Summary
from posgw.sandbox.processes import SetupError

WATCH_S = 1.0  # outbox depth sampling, and drain polling
#: The outbox is empty and the center has stored nothing new for this long:
#: what it lacks now is not on its way. Long, because after a broker restart
#: the center first works through redeliveries it already holds (stored, not
#: counted) and that took 15-20 s for a 2,000-event backlog in trials.
STALLED_S = 120.0


class OutboxWatch:
    """Samples the gateway's outbox depth from its database, keeps the maximum."""

    def __init__(self, database: str) -> None:
        self.store = Store(database)
        self.depth = self.max_depth = 0

    async def sample(self) -> int:
        self.depth = (await asyncio.to_thread(self.store.outbox_stats)).depth
        self.max_depth = max(self.max_depth, self.depth)
        return self.depth

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_S)


async def progress(run: SoakRun, every: float, stop: asyncio.Event) -> None:
    """A line on stderr now and then; fails the soak if a child dies on its own."""
    stack, traffic, watch, faults, start = run.stack, run.traffic, run.watch, run.faults, run.start
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        for index, center in enumerate(stack.centers):
            if not center.running and index not in faults.restarting_centers:
                raise SetupError(f"center {index + 1} exited on its own: "
                                 f"see {center.log.name}")
        if not stack.gateway.running and not faults.restarting_gateway:
            raise SetupError("the gateway exited on its own: see gateway.log")
        elapsed = SYSTEM_CLOCK.monotonic() - start
        print(f"[{elapsed:6.0f} s] answered {traffic.answered:,} "
              f"({traffic.answered / max(elapsed, 1e-9):.1f} tx/s), outbox {watch.depth:,}, "
              f"broker SIGTERM {faults.broker_restarts} / SIGKILL {faults.broker_kills}, "
              f"gateway kills {faults.gateway_kills}, center kills {faults.center_kills}, "
              f"PostgreSQL crashes {faults.postgres_restarts}, "
              f"retransmissions {traffic.retransmissions:,}", file=sys.stderr, flush=True)


def terminal_specs(tcp_terminals: int) -> list[TerminalSpec]:
    return [TerminalSpec(SERIAL_TERMINAL, "serial", SERIAL_PROFILE),
            TerminalSpec(USB_TERMINAL, "usb", USB_PROFILE),
            *(TerminalSpec(f"P{n + 1:07d}", "tcp", TCP_PROFILE) for n in range(tcp_terminals))]


async def open_terminals(stack: SoakStack, specs: list[TerminalSpec], pacer: Pacer,
                         traffic: TrafficLog) -> list[DurableTerminal]:
    terminals = []
    for spec in specs:
        redial = None
        transport: Transport
        if spec.link == "serial":
            transport = stack.pty.master_transport()
        elif spec.link == "usb":
            transport = stack.usb_device.device_transport()
        else:
            redial = tcp_redial(stack.listen_port)
            transport = await connect_tcp("127.0.0.1", stack.listen_port, timeout=1)
        terminals.append(durable_terminal(spec, transport, stack.cards, pacer, traffic,
                                          MERCHANT, redial))
    return terminals


@dataclasses.dataclass(slots=True)
class CatchUp:
    """After the traffic: when the center first held as many events as the
    ledger (complete), and when the outbox was empty as well (drained);
    None for what did not happen."""

    complete_s: float | None = None
    drained_s: float | None = None


async def catch_up(stack: SoakStack, watch: OutboxWatch, began: float,
                   timeout_s: float) -> CatchUp:
    """Poll both databases until the center holds as many events as the
    ledger and the outbox is empty (the full comparison comes after); give
    up when the center stops growing short of that with nothing left to
    send (events were lost), or past `timeout_s`."""
    result = CatchUp()
    center = CenterStore(stack.center_database, create=False)
    held, unchanged_since = -1, began
    try:
        while (now := SYSTEM_CLOCK.monotonic()) - began < timeout_s:
            count = await asyncio.to_thread(stored_now, center)
            if count is not None and count != held:
                held, unchanged_since = count, now
            if held >= await asyncio.to_thread(ledger_count, watch.store):
                if result.complete_s is None:
                    result.complete_s = now - began
                if await watch.sample() == 0:
                    result.drained_s = now - began
                    return result
            elif await watch.sample() == 0 and now - unchanged_since > STALLED_S:
                break  # nothing left to send, nothing more arriving
            await asyncio.sleep(WATCH_S)  # polling two databases, with a deadline
    finally:
        center.close()
    return result


class SoakRun:
    """One soak: the traffic under faults, then the drain; what it measured."""

    def __init__(self, args: argparse.Namespace, stack: SoakStack) -> None:
        self.args, self.stack = args, stack
        self.watch, self.traffic, self.faults = OutboxWatch(stack.database), TrafficLog(), Faults()
        self.bench_cpu = time.process_time()
        self.start = SYSTEM_CLOCK.monotonic()
        self.until = self.start + args.minutes * 60
        self.pacer = Pacer(args.rate, self.start)
        self.traffic_s = self.run_s = 0.0
        self.catch_up = CatchUp()
        self.gateway_exit = 0
        self.cpu: dict[str, float] = {}

    async def load(self, terminals: list[DurableTerminal]) -> None:
        """The traffic, the faults beside it, then the wait for the center."""
        args, stack = self.args, self.stack
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.watch.run(stop))
            group.create_task(progress(self, max(5.0, min(60.0, args.minutes * 3)), stop))
            chaos = [group.create_task(fault) for fault in self.faults_to_run()]
            await asyncio.gather(*(group.create_task(run_terminal(
                terminal, stack.pool, args.seed, self.until)) for terminal in terminals))
            # The rate's window: the schedule, from its start to the last request
            # sent (answers still due then are counted, not waited for here).
            self.traffic_s = self.traffic.last_sent - self.start
            await asyncio.gather(*chaos)
            print(f"traffic done after {self.traffic_s:.0f} s; waiting for the center",
                  file=sys.stderr, flush=True)
            # Time to complete counts from the end of the traffic, not from
            # the end of the last fault: the wait for both is part of it.
            self.catch_up = await catch_up(stack, self.watch, self.traffic.last_sent,
                                           args.drain_timeout)
            stop.set()

    def faults_to_run(self) -> list[Coroutine[Any, Any, None]]:
        args, stack, faults = self.args, self.stack, self.faults
        when = (self.start, self.until)
        return [
            broker_outages(stack, args.broker_restart_every, args.broker_outage, *when, faults,
                           kill=False),
            broker_outages(stack, args.broker_kill_every, args.broker_outage, *when, faults,
                           kill=True),
            kill_gateway_every(stack, args.kill_every, *when, faults),
            *(kill_center_every(stack, index, args.center_kill_every, *when, faults)
              for index in range(len(stack.centers))),
            restart_postgres_every(stack, args.postgres_restart_every, args.postgres_outage,
                                   *when, faults)]

    async def stop(self) -> None:
        """SIGTERM the gateway and the center; their CPU time over the run."""
        stack = self.stack
        self.watch.store.close()
        self.gateway_exit = await asyncio.to_thread(stack.gateway.terminate)
        for center in stack.centers:
            await asyncio.to_thread(center.terminate)
        self.run_s = SYSTEM_CLOCK.monotonic() - self.start
        self.cpu = {"gateway": stack.gateway.cpu_s,
                    "center": sum(center.cpu_s for center in stack.centers),
                    "bench (terminals, acquirer)": time.process_time() - self.bench_cpu,
                    "broker": stack.broker.cpu_so_far()}

    def report(self, summary: Summary, approvals_missing: int,
               redeliveries: int | None) -> SoakReport:
        args, traffic, faults = self.args, self.traffic, self.faults
        return SoakReport(
            machine=machine(), broker=mosquitto_version(),
            center_subscription=(f"shared ($share/{args.center_share_group})"
                                 if args.center_share_group else "plain"),
            centers=args.centers, center_store=center_store(self.stack),
            minutes=args.minutes, target_rate=args.rate, tcp_terminals=args.tcp_terminals,
            traffic_s=round(self.traffic_s, 1), requests=traffic.requests,
            answered=traffic.answered, unanswered=traffic.unanswered,
            retransmissions=traffic.retransmissions, redials=traffic.redials,
            answered_by_link=dict(traffic.answered_by_link),
            latency_p50_ms=milliseconds(traffic.latencies, 50),
            latency_p99_ms=milliseconds(traffic.latencies, 99),
            schedule_lag_p99_ms=milliseconds(self.pacer.lags, 99),
            schedule_lag_max_ms=round(max(self.pacer.lags, default=0.0) * 1000, 1),
            broker_restarts=faults.broker_restarts, broker_kills=faults.broker_kills,
            broker_outage_s=args.broker_outage, gateway_kills=faults.gateway_kills,
            gateway_back_max_s=round(max(faults.gateway_back_s, default=0.0), 2),
            center_kills=faults.center_kills,
            center_kills_mid_ingest=faults.center_kills_mid_ingest,
            center_back_max_s=round(max(faults.center_back_s, default=0.0), 2),
            postgres_restarts=faults.postgres_restarts,
            postgres_outage_s=args.postgres_outage if args.postgres else 0.0,
            max_outbox_depth=self.watch.max_depth,
            complete_s=seconds_or_never(self.catch_up.complete_s),
            drained_s=seconds_or_never(self.catch_up.drained_s),
            gateway_exit_code=self.gateway_exit, ledger_final=summary.ledger_final,
            center_count=summary.center_received, lost=summary.missing,
            duplicated=summary.duplicates, unknown_at_center=summary.unexpected,
            redeliveries_ignored=redeliveries, approvals_not_in_ledger=approvals_missing,
            by_outcome=summary.by_outcome, terminal_replies=dict(traffic.tally.codes),
            cpu_cores={name: round(seconds / self.run_s, 2)
                       for name, seconds in self.cpu.items()})


def seconds_or_never(seconds: float | None) -> float:
    return round(seconds, 1) if seconds is not None else -1.0


def center_store(stack: SoakStack) -> str:
    if stack.postgres is None:
        return "SQLite"
    return f"PostgreSQL {stack.postgres.bin_dir.parent.name} (private server)"


async def soak(args: argparse.Namespace, workdir: Path) -> SoakReport:
    async with soak_stack(workdir, args.seed, args.center_share_group, centers=args.centers,
                          postgres=args.postgres) as stack:
        await asyncio.to_thread(stack.start_centers)
        await asyncio.to_thread(stack.start_gateway)
        run = SoakRun(args, stack)
        # The terminals' lines close only after the gateway has stopped: a pty
        # whose master closes vanishes, and the gateway would log it missing.
        async with contextlib.AsyncExitStack() as lines:
            for terminal in (terminals := await open_terminals(
                    stack, terminal_specs(args.tcp_terminals), run.pacer, run.traffic)):
                await lines.enter_async_context(terminal)
            await run.load(terminals)
            await run.stop()
        counts = center_counts(stack.centers)
        redeliveries = counts.duplicates if counts is not None else None
        summary, approvals_missing = await asyncio.to_thread(
            compare, stack.database, stack.center_database, GATEWAY_ID,
            terminal_approvals=run.traffic.approved, redeliveries_ignored=redeliveries)
        payloads = await asyncio.to_thread(stored_payloads, stack.center_database)
    report = run.report(summary, approvals_missing, redeliveries)
    handled = report.center_count + (redeliveries or 0)
    return dataclasses.replace(
        report, schema_check_us_per_event=round(schema_check_us(payloads), 2),
        center_cpu_us_per_event=round(run.cpu["center"] / handled * 1e6, 1) if handled else 0.0)


def mosquitto_version() -> str:
    try:
        out = subprocess.run([find_mosquitto(), "-h"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "mosquitto"
    first = out.splitlines()[0] if out else "mosquitto"
    return first.replace(" version ", " ")


def run_soak(args: argparse.Namespace, workdir: Path) -> SoakReport | None:
    """The report, or None (with the reason on stderr) when the soak could not run."""
    try:
        return asyncio.run(soak(args, workdir))
    except* SetupError as group:
        for exc in group.exceptions:
            print(f"soak: {exc}", file=sys.stderr)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__.split("\n\n")[0])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="posgw-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, filename=workdir / "soak.log",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report = run_soak(args, workdir)
    if report is None:
        print(f"soak: logs kept in {workdir}", file=sys.stderr)
        return 2
    text = "".join(line + "\n" for line in report.lines())
    print(text, end="")
    if args.report is not None:
        args.report.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    if args.update_readme:
        update_readmes("soak", command_line(args), text)
    if report.ok and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"soak: databases and logs in {workdir}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
