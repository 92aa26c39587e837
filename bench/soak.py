"""Soak: paced mixed traffic over serial, USB and TCP terminals while the
broker is restarted and the gateway SIGKILLed; at the end the center must
hold exactly the ledger's final transactions — none lost, none twice.

    python bench/soak.py --minutes 30          # 200 tx/s, broker every 5 min, kill every 10

What runs (bench/soak_stack.py): a private mosquitto with persistence, the
gateway as its own process (`posgw run`, SQLite synchronous=FULL, upstream
ISO 8583 to the acquirer simulator), the center as its own process (`posgw
center`), and in this process the acquirer simulator and the terminals: one
on a pty serial line, one on an emulated USB device reached by the gateway's
pyusb through a loopback relay, and --tcp-terminals over TCP. The terminals
(bench/soak_traffic.py) share one open-loop schedule at --rate, redial and
retransmit when an answer is lost. Every --broker-restart-every seconds the
broker gets SIGTERM and comes back --broker-outage seconds later on the same
port; every --kill-every seconds the gateway gets SIGKILL and is started
again on the same database. After the traffic the outbox drains, the
center catches up, and the ledger is compared with the center
(bench/soak_report.py). Exit status 0 only when nothing was lost or doubled
(1 otherwise; 2 when the soak could not run, e.g. without mosquitto).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.readme import machine, update_readmes
from bench.schema_cost import schema_check_us, stored_payloads
from bench.soak_faults import Faults, kill_gateway_every, restart_broker_every
from bench.soak_report import (
    SoakReport,
    center_count,
    compare,
    ledger_count,
    milliseconds,
)
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
DEFAULTS = {"minutes": 30.0, "rate": 200.0, "broker_restart_every": 300.0,
            "broker_outage": 5.0, "kill_every": 600.0, "tcp_terminals": 20}


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
        if not stack.center.running:
            raise SetupError("the center exited on its own: see center.log")
        if not stack.gateway.running and not faults.restarting_gateway:
            raise SetupError("the gateway exited on its own: see gateway.log")
        elapsed = SYSTEM_CLOCK.monotonic() - start
        print(f"[{elapsed:6.0f} s] answered {traffic.answered:,} "
              f"({traffic.answered / max(elapsed, 1e-9):.1f} tx/s), outbox {watch.depth:,}, "
              f"broker restarts {faults.broker_restarts}, gateway kills {faults.gateway_kills}, "
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


async def drained(stack: SoakStack, watch: OutboxWatch, timeout_s: float) -> float | None:
    """Seconds until the outbox is empty and the center holds as many events as
    the ledger (the full comparison comes after); None when the center stops
    growing short of that (events were lost), or past `timeout_s`."""
    began = SYSTEM_CLOCK.monotonic()
    center = CenterStore(stack.center_database, create=False)
    held, unchanged_since = -1, began
    try:
        while (now := SYSTEM_CLOCK.monotonic()) - began < timeout_s:
            count = await asyncio.to_thread(center_count, center)
            if count != held:
                held, unchanged_since = count, now
            if await watch.sample() == 0:
                if count >= await asyncio.to_thread(ledger_count, watch.store):
                    return now - began
                if now - unchanged_since > STALLED_S:
                    break  # nothing left to send, nothing more arriving
            await asyncio.sleep(WATCH_S)  # polling two databases, with a deadline
    finally:
        center.close()
    return None


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
        self.drain_s: float | None = None
        self.gateway_exit = 0
        self.cpu: dict[str, float] = {}

    async def load(self, terminals: list[DurableTerminal]) -> None:
        """The traffic, the faults beside it, then the wait for the center."""
        args, stack, faults = self.args, self.stack, self.faults
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.watch.run(stop))
            group.create_task(progress(self, max(5.0, min(60.0, args.minutes * 3)), stop))
            chaos = [group.create_task(restart_broker_every(
                         stack, args.broker_restart_every, args.broker_outage, self.start,
                         self.until, faults)),
                     group.create_task(kill_gateway_every(
                         stack, args.kill_every, self.start, self.until, faults))]
            await asyncio.gather(*(group.create_task(run_terminal(
                terminal, stack.pool, args.seed, self.until)) for terminal in terminals))
            # The rate's window: the schedule, from its start to the last request
            # sent (answers still due then are counted, not waited for here).
            self.traffic_s = self.traffic.last_sent - self.start
            await asyncio.gather(*chaos)
            print(f"traffic done after {self.traffic_s:.0f} s; waiting for the center",
                  file=sys.stderr, flush=True)
            self.drain_s = await drained(stack, self.watch, args.drain_timeout)
            stop.set()

    async def stop(self) -> None:
        """SIGTERM the gateway and the center; their CPU time over the run."""
        stack = self.stack
        self.watch.store.close()
        self.gateway_exit = await asyncio.to_thread(stack.gateway.terminate)
        await asyncio.to_thread(stack.center.terminate)
        self.run_s = SYSTEM_CLOCK.monotonic() - self.start
        self.cpu = {"gateway": stack.gateway.cpu_s, "center": stack.center.cpu_s,
                    "bench (terminals, acquirer)": time.process_time() - self.bench_cpu,
                    "broker": stack.broker.cpu_so_far()}

    def report(self, summary: Summary, approvals_missing: int,
               redeliveries: int | None) -> SoakReport:
        args, traffic, faults = self.args, self.traffic, self.faults
        return SoakReport(
            machine=machine(), broker=mosquitto_version(),
            center_subscription=(f"shared ($share/{args.center_share_group})"
                                 if args.center_share_group else "plain"),
            minutes=args.minutes, target_rate=args.rate, tcp_terminals=args.tcp_terminals,
            traffic_s=round(self.traffic_s, 1), requests=traffic.requests,
            answered=traffic.answered, unanswered=traffic.unanswered,
            retransmissions=traffic.retransmissions, redials=traffic.redials,
            answered_by_link=dict(traffic.answered_by_link),
            latency_p50_ms=milliseconds(traffic.latencies, 50),
            latency_p99_ms=milliseconds(traffic.latencies, 99),
            schedule_lag_p99_ms=milliseconds(self.pacer.lags, 99),
            schedule_lag_max_ms=round(max(self.pacer.lags, default=0.0) * 1000, 1),
            broker_restarts=faults.broker_restarts, broker_outage_s=args.broker_outage,
            gateway_kills=faults.gateway_kills,
            gateway_back_max_s=round(max(faults.gateway_back_s, default=0.0), 2),
            max_outbox_depth=self.watch.max_depth,
            drained_s=round(self.drain_s, 1) if self.drain_s is not None else -1.0,
            gateway_exit_code=self.gateway_exit, ledger_final=summary.ledger_final,
            center_count=summary.center_received, lost=summary.missing,
            duplicated=summary.duplicates, unknown_at_center=summary.unexpected,
            redeliveries_ignored=redeliveries, approvals_not_in_ledger=approvals_missing,
            by_outcome=summary.by_outcome, terminal_replies=dict(traffic.tally.codes),
            cpu_cores={name: round(seconds / self.run_s, 2)
                       for name, seconds in self.cpu.items()})


async def soak(args: argparse.Namespace, workdir: Path) -> SoakReport:
    async with soak_stack(workdir, args.seed, args.center_share_group) as stack:
        await asyncio.to_thread(stack.start_center)
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
        counts = center_counts(stack.center)
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


def command_line(args: argparse.Namespace) -> str:
    """The command as it would be typed: --minutes always, other options when not default."""
    parts = ["python bench/soak.py", f"--minutes {args.minutes:g}"]
    for name, default in DEFAULTS.items():
        value = getattr(args, name)
        if name != "minutes" and value != default:
            parts.append(f"--{name.replace('_', '-')} {value:g}")
    if args.center_share_group:
        parts.append(f"--center-share-group {args.center_share_group}")
    return " ".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=DEFAULTS["minutes"],
                        help="minutes of traffic (default 30)")
    parser.add_argument("--rate", type=float, default=DEFAULTS["rate"],
                        help="requests per second over all terminals, open loop (default 200)")
    parser.add_argument("--broker-restart-every", type=float,
                        default=DEFAULTS["broker_restart_every"], metavar="SECONDS",
                        help="SIGTERM the broker this often (default 300)")
    parser.add_argument("--broker-outage", type=float, default=DEFAULTS["broker_outage"],
                        metavar="SECONDS", help="how long the broker stays down (default 5)")
    parser.add_argument("--kill-every", type=float, default=DEFAULTS["kill_every"],
                        metavar="SECONDS", help="SIGKILL the gateway this often (default 600)")
    parser.add_argument("--tcp-terminals", type=int, default=DEFAULTS["tcp_terminals"],
                        help="IP terminals, besides one serial and one USB (default 20)")
    parser.add_argument("--drain-timeout", type=float, default=900.0, metavar="SECONDS",
                        help="how long the center may take to catch up after the traffic")
    parser.add_argument("--center-share-group", default="", metavar="GROUP",
                        help="the center's share_group; default \"\": a plain subscription, "
                             "which mosquitto restores after a restart (a shared one it "
                             "does not: see bench/README.md)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--workdir", type=Path,
                        help="keep databases and logs here (default: a temporary directory, "
                             "removed after a clean run, kept after a failed one)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the report into README.md and bench/README.md (bench:soak)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.tcp_terminals < 0:
        parser.error("--minutes and --rate must be positive, --tcp-terminals not negative")
    return args


def run_soak(args: argparse.Namespace, workdir: Path) -> SoakReport | None:
    """The report, or None (with the reason on stderr) when the soak could not run."""
    try:
        return asyncio.run(soak(args, workdir))
    except* SetupError as group:
        for exc in group.exceptions:
            print(f"soak: {exc}", file=sys.stderr)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
