"""`posgw demo`: the whole system on one machine, judged at the end.

The machinery (the stack, its traffic, its summary) is in sandbox/demo/;
this module parses and prints, and is imported only when `demo` runs
(cli/main.py's registry).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from posgw.cli.common import fail

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_DURATION_S = 30.0
DEFAULT_TCP_TERMINALS = 3
DEFAULT_RATE = 4.0


@click.command()
@click.option("--duration", type=float, default=DEFAULT_DURATION_S, show_default=True,
              help="Seconds of terminal traffic.")
@click.option("--terminals", type=click.IntRange(0, 1000), default=DEFAULT_TCP_TERMINALS,
              show_default=True, help="IP terminals on TCP, besides one serial and one USB.")
@click.option("--rate", type=float, default=DEFAULT_RATE, show_default=True,
              help="Requests per second per terminal.")
@click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the summary as JSON (keys ledger_final, center_received, "
                   "missing, duplicates, by_outcome, ...).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep databases, keys and logs here (default: a temporary directory, "
                   "removed afterwards).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seeds the card pool and each terminal's choices.")
@click.option("--broker", "broker_choice", type=click.Choice(["auto", "mosquitto", "embedded"]),
              default="auto", show_default=True,
              help="auto: mosquitto when installed, else the embedded Python broker.")
@click.option("--console", "with_console", is_flag=True,
              help="Then leave the center console running over the demo's center "
                   "database, with an admin account and its one-time password, until Ctrl-C.")
@click.option("--console-listen", metavar="HOST:PORT",
              help="Where the console serves (default: a free port on 127.0.0.1).")
@click.option("--no-settlement", is_flag=True,
              help="Skip the settlement step (files with injected faults, matching).")
def demo(duration: float, terminals: int, rate: float, summary_json: Path | None,
         workdir: Path | None, seed: int, broker_choice: str, with_console: bool,
         console_listen: str | None, no_settlement: bool) -> None:
    """Run the whole system on this machine and check nothing was lost.

    \b
    Starts, in one command:
      a broker        mosquitto when installed, else the embedded Python one
      the acquirer    simulator (ISO 8583 over TCP, demo cards, PIN checks)
      the gateway     the real daemon: SQLite ledger, risk rules, forwarder
      the center      verifies signatures, stores each event once
      terminals       one on a pty serial line (ecr-stx-lrc), one on an
                      emulated USB device (unionpay-tpdu), N over TCP
                      (iso87-ascii), running mixed traffic: sales, refunds,
                      voids, lost responses, retransmissions, repeated
                      swipes, wrong PINs, descending trial amounts

    \b
    Then it waits until the center has everything and prints transactions
    by outcome and the check: ledger final transactions vs events at the
    center, missing, duplicates.

    \b
    Then it settles the day: registers each terminal's merchant on the
    standard plan (0.6 %, no fixed fee), writes the acquirer's settlement
    CSV and the bank's camt.053 for the approved sales with one fault of
    each kind (a 0.62 % rate, a fixed 1.00 per sale, a sale settled twice,
    a credit never sent, a credit sent late), imports both, matches, and
    prints the findings: each fault must be found exactly once, with its
    amount, and nothing else.

    \b
    Exit status 0 only when the center holds exactly the ledger's final
    transactions and the settlement step found what was injected.

    \b
    With --console it then serves the center console over the center's
    database (search what just happened), prints its URL and a one-time
    admin password (the first sign-in chooses a new one), and runs until
    Ctrl-C.
    """
    from rich.console import Console

    from posgw.sandbox.demo.run import run_demo, scratch_dir
    from posgw.sandbox.demo.settlement import settle_demo
    from posgw.sandbox.demo.settlement_outcome import settlement_tables
    from posgw.sandbox.demo.summary import summary_tables

    console = Console()
    address = _console_address(console_listen) if with_console else None
    folder = workdir or scratch_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _log_to(folder / "demo.log")
    summary = asyncio.run(run_demo(console, folder, duration_s=duration, terminals=terminals,
                                   rate=rate, seed=seed, broker_choice=broker_choice))
    for table in summary_tables(summary):
        console.print(table)
    try:
        settlement = None if no_settlement else settle_demo(folder, seed)
        for part in settlement_tables(settlement) if settlement is not None else ():
            console.print(part)
        if summary_json is not None:
            body = {**summary.as_json(),
                    "settlement": settlement.as_json() if settlement is not None else None}
            summary_json.write_text(json.dumps(body, indent=2) + "\n")
        if address is not None:
            _console(console, folder, address)
    finally:  # also when the console could not start (its address taken)
        if workdir is None:
            shutil.rmtree(folder, ignore_errors=True)
    sys.exit(0 if summary.ok and (settlement is None or settlement.ok) else 1)


def _console_address(listen: str | None) -> tuple[str, int]:
    """Checked before the demo runs: a typo is not found a minute later."""
    from posgw.sandbox.demo.console import listen_address

    try:
        return listen_address(listen)
    except ValueError as exc:
        fail("demo", exc)


def _console(console: Console, folder: Path, address: tuple[str, int]) -> None:
    """Serve the console until Ctrl-C; its address and password printed once it listens."""
    from posgw.sandbox.demo.console import Invitation, serve_console
    from posgw.sandbox.demo.stack import BRANCH

    def announce(invitation: Invitation) -> None:
        console.print(f"\ncenter console: {invitation.url}\n"
                      f"  sign in as [bold]{invitation.name}[/] with the one-time password "
                      f"[bold]{invitation.password}[/] (you choose your own at once)\n"
                      f"  search the payments above (by branch: {BRANCH}, today); "
                      "Ctrl-C stops the console", soft_wrap=True)

    serve_console(folder, address, announce)
    console.print("console stopped")


def _log_to(path: Path) -> None:
    """Daemon logs go to a file: the terminal shows progress and the verdict."""
    from posgw.gateway.logsetup import LOG_FORMAT

    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
