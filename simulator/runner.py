"""What `posgw simulate` and `posgw acquirer` run, with rich progress and tables.

The CLI parses and loads profiles; this module dials the peer (TCP, a
serial path, a USB device), runs scenarios or the load generator, and
prints the results. Output shows masked PANs only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from posgw.drivers.base import Transport
from posgw.protocols.profile import Profile
from posgw.simulator.acquirer import AcquirerServer
from posgw.simulator.acquirer_host import AcquirerHost
from posgw.simulator.cards import demo_cards
from posgw.simulator.loadgen import LoadReport, run_load
from posgw.simulator.scenario_kit import Connect, ScenarioContext, ScenarioResult
from posgw.simulator.scenarios import SCENARIOS


@dataclass(frozen=True, slots=True)
class Target:
    """Where the terminals connect: kind "tcp" (HOST:PORT), "serial" (path) or "usb"."""

    kind: str
    address: str
    usb_relay: str | None = None


@dataclass(frozen=True, slots=True)
class LoadPlan:
    terminals: int
    rate: float  # per terminal
    duration_s: float


def connector(target: Target, profile: Profile) -> Connect:
    """A function that opens a fresh transport to `target` on each call."""

    async def connect() -> Transport:
        if target.kind == "tcp":
            from posgw.drivers.tcp_link import connect_tcp

            host, port = split_host_port(target.address)
            return await connect_tcp(host, port)
        if target.kind == "serial":
            from posgw.drivers.serial_link import SerialSettings, open_serial

            return await open_serial(target.address, SerialSettings.from_spec(profile.transport))
        return await _open_usb(target, profile)

    return connect


async def _open_usb(target: Target, profile: Profile) -> Transport:
    from posgw.drivers.usb_link import open_usb

    matches = profile.transport.usb
    if target.address:
        vid, pid = (int(part, 16) for part in target.address.split(":"))
        matches = tuple(m for m in matches if (m.vid, m.pid) == (vid, pid)) or matches
    if not matches:
        raise ValueError(f"profile {profile.name} names no USB identity")
    backend = None
    if target.usb_relay:  # an emulated device served by `UsbRelayServer`
        from posgw.drivers.usb_relay import RelayBackend

        backend = RelayBackend(*split_host_port(target.usb_relay))
    return await open_usb(matches[0], backend=backend)


def split_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def run_simulation(profile: Profile, target: Target, *, scenarios: list[str],
                   load: LoadPlan | None, terminal_id: str, merchant_id: str,
                   response_timeout_s: float) -> bool:
    """Run scenarios, then the load if asked; print tables; True when all passed."""
    console = Console()
    connect = connector(target, profile)
    results = asyncio.run(_run_scenarios(console, profile, connect, scenarios, terminal_id,
                                         merchant_id, response_timeout_s)) if scenarios else []
    if results:
        console.print(scenario_table(results))
    if load is not None:
        report = asyncio.run(_run_load(console, profile, connect, load, terminal_id,
                                       merchant_id))
        console.print(load_table(report))
    return all(r.passed or r.skipped for r in results)


async def _run_scenarios(console: Console, profile: Profile, connect: Connect,
                         names: list[str], terminal_id: str, merchant_id: str,
                         response_timeout_s: float) -> list[ScenarioResult]:
    results = []
    ctx = ScenarioContext(profile, connect, terminal_id, merchant_id,
                          response_timeout_s=response_timeout_s)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scenarios", total=len(names))
        for name in names:
            progress.update(task, description=name)
            results.append(await SCENARIOS[name].run(ctx))
            progress.advance(task)
    return results


async def _run_load(console: Console, profile: Profile, connect: Connect, plan: LoadPlan,
                    first_terminal_id: str, merchant_id: str) -> LoadReport:
    total = int(plan.terminals * plan.rate * plan.duration_s)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{plan.terminals} terminals", total=total)
        return await run_load(profile, connect, terminals=plan.terminals, rate=plan.rate,
                              duration_s=plan.duration_s, merchant_id=merchant_id,
                              first_terminal_id=first_terminal_id,
                              on_progress=lambda n: progress.advance(task, n))


def scenario_table(results: list[ScenarioResult]) -> Table:
    table = Table("scenario", "result", "response codes", "failed checks", title="Scenarios")
    for r in results:
        verdict = "skipped" if r.skipped else ("pass" if r.passed else "FAIL")
        failed = "; ".join(c.description for c in r.checks if not c.passed) or r.skipped
        codes = " ".join(code or "--" for code in r.codes)
        table.add_row(r.name, verdict, codes, failed)
    return table


def load_table(report: LoadReport) -> Table:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.1f} ms"

    table = Table("terminals", "target/s", "achieved/s", "sent", "answered", "approved",
                  "p50", "p95", "p99", title="Load")
    table.add_row(str(report.terminals), f"{report.target_rate:.1f}",
                  f"{report.achieved_rate:.1f}", str(report.sent), str(report.answered),
                  str(report.approved), ms(report.p50_s), ms(report.p95_s), ms(report.p99_s))
    return table


def serve_acquirer(profile: Profile, listen: str, latency_s: float) -> None:
    """Run the acquirer simulator with the demo cards until interrupted."""
    host_name, port = split_host_port(listen)

    async def serve() -> None:
        host = AcquirerHost(profile.iso8583, demo_cards())
        async with AcquirerServer(profile, host, bind=host_name, port=port,
                                  latency_s=latency_s) as server:
            Console().print(f"acquirer simulator ({profile.name}) on {host_name}:{server.port}")
            await asyncio.Event().wait()  # until Ctrl-C cancels the run

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        asyncio.run(serve())
