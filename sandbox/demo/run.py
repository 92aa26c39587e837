"""The demo's timeline: start, run the terminals, let everything arrive, judge."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.gateway.store import Store
from posgw.sandbox.demo.stack import (
    DemoStack,
    broker_accounts,
    cancel_and_wait,
    demo_stack,
    terminal_lines,
    terminal_run,
)
from posgw.sandbox.demo.summary import Summary, center_ids, ledger_ids, summarize
from posgw.sandbox.demo.traffic import TerminalRun, run_terminal
from posgw.sandbox.mosquitto import demo_broker

log = logging.getLogger(__name__)

START_TIMEOUT_S = 20.0
DELIVERY_TIMEOUT_S = 60.0
POLL_S = 0.2  # progress refresh and delivery polling (with a deadline)


def scratch_dir() -> Path:
    """A fresh folder for one demo's databases, keys and logs."""
    return Path(tempfile.mkdtemp(prefix="posgw-demo-"))


async def run_demo(console: Console, workdir: Path, *, duration_s: float, terminals: int,
                   rate: float, seed: int, broker_choice: str = "auto") -> Summary:
    started = SYSTEM_CLOCK.monotonic()
    async with (demo_broker(workdir, broker_choice, broker_accounts()) as broker,
                demo_stack(workdir, broker, seed, terminals) as demo):
        access = ("a password and ACL per client" if broker.passwords
                  else "anonymous, loopback only")
        console.print(f"broker: {broker.kind} on {broker.host}:{broker.port} ({access}); "
                      f"work dir: {workdir}")
        stop = asyncio.Event()
        gateway_task = asyncio.create_task(demo.gateway.run(stop), name="gateway")
        center_task = asyncio.create_task(demo.ingest.run(), name="center")
        try:
            await _started(demo, gateway_task)
            runs = [terminal_run(demo, tid, transport, profile, seed)
                    for tid, transport, profile in await terminal_lines(demo, terminals)]
            await _traffic(console, demo, runs, duration_s=duration_s, rate=rate)
            await _delivered(console, demo)
        finally:
            stop.set()
            await asyncio.wait_for(gateway_task, 30)
            await cancel_and_wait(center_task)
        with Store(demo.config.database) as store:
            return summarize(store, demo.center_store, demo.config.gateway_id,
                             redeliveries_ignored=demo.ingest.duplicates,
                             terminal_replies=dict(demo.tally.codes),
                             duration_s=SYSTEM_CLOCK.monotonic() - started)


async def _started(demo: DemoStack, gateway_task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(START_TIMEOUT_S):
        ready = asyncio.create_task(demo.gateway.ready.wait())
        await asyncio.wait([ready, gateway_task], return_when=asyncio.FIRST_COMPLETED)
        if gateway_task.done():
            gateway_task.result()  # raises what stopped it
        await demo.ingest.subscribed.wait()
        assert demo.gateway.forwarder is not None
        await demo.gateway.forwarder.connected.wait()


async def _traffic(console: Console, demo: DemoStack, runs: list[TerminalRun], *,
                   duration_s: float, rate: float) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task(f"{len(runs)} terminals", total=duration_s, status="")
        tasks = [asyncio.create_task(_terminal(run, rate, duration_s)) for run in runs]
        begun = SYSTEM_CLOCK.monotonic()
        while not all(task.done() for task in tasks):
            await asyncio.wait(tasks, timeout=POLL_S)
            tally = demo.tally
            progress.update(bar, completed=min(duration_s, SYSTEM_CLOCK.monotonic() - begun),
                            status=f"{tally.answered} answered, {tally.unanswered} unanswered")
        for task in tasks:
            task.result()


async def _terminal(run: TerminalRun, rate: float, duration_s: float) -> None:
    async with run.terminal:
        await run_terminal(run, rate=rate, duration_s=duration_s)


async def _delivered(console: Console, demo: DemoStack) -> None:
    """Wait (bounded) until the center holds as many events as the ledger."""
    deadline = SYSTEM_CLOCK.monotonic() + DELIVERY_TIMEOUT_S
    with Store(demo.config.database) as store, console.status("delivering to the center"):
        while SYSTEM_CLOCK.monotonic() < deadline:
            ledger = await asyncio.to_thread(ledger_ids, store)
            received = await asyncio.to_thread(center_ids, demo.center_store,
                                               demo.config.gateway_id)
            if set(ledger) <= set(received):
                return
            await asyncio.sleep(POLL_S)
    log.error("not everything reached the center within %.0f s", DELIVERY_TIMEOUT_S)
