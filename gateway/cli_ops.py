"""`posgw cases` and `posgw terminals`: the branch operator's views and actions.

Views read the gateway's database (daemon up or down). Actions go to the
running daemon as a command on the branch's `cmd` topic — the same path the
center uses — because the daemon is the one writer of the outbox: a second
process writing events would break the per-gateway sequence.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

EXIT_BAD_INPUT = 2
CONFIG = click.option("-c", "--config", "config_path", required=True, metavar="GATEWAY.TOML",
                      type=click.Path(dir_okay=False, path_type=Path),
                      help="The gateway's configuration (database, broker, branch).")


def _fail(what: str, reason: object) -> NoReturn:
    click.echo(f"posgw {what}: {reason}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _config(config_path: Path, what: str) -> Any:
    from gateway.config import load_config
    from protocols.iso8583.errors import SpecError

    try:
        return load_config(config_path)
    except SpecError as exc:
        _fail(what, exc)


def _rows(config: Any, model: Any) -> list[Any]:
    from sqlmodel import select

    from gateway.store import Store

    with Store(config.database) as store, store.session() as session:
        return list(session.scalars(select(model)))


def _send(config: Any, action: str, argument: str, wait_s: float) -> dict[str, Any] | None:
    """Publish a command.v1 to this branch's daemon; its reply, or None."""
    from center.commands import build_command, send_command
    from center.config import CenterMqtt

    mqtt = config.mqtt
    broker = CenterMqtt(mqtt.host, mqtt.port, topic_prefix=mqtt.topic_prefix,
                        username=mqtt.username, password=mqtt.password, tls_ca=mqtt.tls_ca,
                        tls_cert=mqtt.tls_cert, tls_key=mqtt.tls_key)
    command = build_command(config.branch_id, action, [argument])
    return asyncio.run(send_command(broker, command, wait_reply_s=wait_s))


def _reply_exit(reply: dict[str, Any] | None) -> NoReturn:
    if reply is None:
        click.echo("no reply from the daemon (is it running and connected?)", err=True)
        sys.exit(1)
    click.echo(f"{reply.get('outcome')}: {reply.get('detail', '')}")
    sys.exit(0 if reply.get("outcome") == "done" else 1)


@click.group()
def cases() -> None:
    """Freeze cases: funds held when a risk rule fired (`list`, `show`, `release`, `return`)."""


@cases.command("list")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def cases_list(config_path: Path, as_json: bool) -> None:
    """Every case: id, status, terminal, rule, opened (times UTC)."""
    from gateway.store import FreezeCase

    rows = sorted(_rows(_config(config_path, "cases"), FreezeCase), key=lambda c: c.opened_at)
    items = [{"id": c.id, "status": c.status, "terminal_id": c.terminal_id, "rule": c.rule,
              "opened_at": c.opened_at.isoformat(), "updated_at": c.updated_at.isoformat()}
             for c in rows]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    table = Table("case", "status", "terminal", "rule", "opened", title="Freeze cases")
    for item in items:
        table.add_row(item["id"], item["status"], item["terminal_id"], item["rule"],
                      item["opened_at"])
    Console().print(table)


@cases.command("show")
@CONFIG
@click.argument("case_id")
def cases_show(config_path: Path, case_id: str) -> None:
    """One case with its evidence (the rules that fired, the transactions involved)."""
    from gateway.store import FreezeCase

    found = [c for c in _rows(_config(config_path, "cases"), FreezeCase) if c.id == case_id]
    if not found:
        click.echo(f"no case {case_id}", err=True)
        sys.exit(1)
    case = found[0]
    click.echo(json.dumps({"id": case.id, "status": case.status, "terminal_id": case.terminal_id,
                           "rule": case.rule, "pan_token": case.pan_token,
                           "opened_at": case.opened_at.isoformat(),
                           "updated_at": case.updated_at.isoformat(),
                           "evidence": case.evidence}, indent=2))


def _resolve_command(name: str, action: str, summary: str) -> click.Command:
    @click.command(name, help=summary)
    @CONFIG
    @click.argument("case_id")
    @click.option("--wait", type=float, default=10.0, show_default=True,
                  help="Seconds to wait for the daemon's reply.")
    def resolve(config_path: Path, case_id: str, wait: float) -> None:
        _reply_exit(_send(_config(config_path, "cases"), action, case_id, wait))

    return resolve


cases.add_command(_resolve_command(
    "release", "release", "Re-clear a case's held sale to the merchant (sent as `settled`)."))
cases.add_command(_resolve_command(
    "return", "return", "Give a case's held funds back to the card (sent as `refund`)."))


@click.group()
def terminals() -> None:
    """The branch's terminals (`list`) and their retirement (`decommission`)."""


@terminals.command("list")
@CONFIG
def terminals_list(config_path: Path) -> None:
    """Every terminal the gateway knows: state, profile, driver, last seen."""
    from gateway.store import TerminalRecord

    table = Table("terminal", "state", "profile", "driver", "last seen", title="Terminals")
    for record in sorted(_rows(_config(config_path, "terminals"), TerminalRecord),
                         key=lambda r: r.terminal_id):
        seen = record.last_seen_at.isoformat() if record.last_seen_at else "-"
        table.add_row(record.terminal_id, record.state, record.profile, record.driver, seen)
    Console().print(table)


@terminals.command("decommission")
@CONFIG
@click.argument("terminal_id")
@click.option("--wait", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the daemon's reply.")
def terminals_decommission(config_path: Path, terminal_id: str, wait: float) -> None:
    """Retire a terminal: it drains (new sales refused 58; its own reversals,
    voids and refunds still pass), then is refused outright once everything
    it did has reached the center. Asks the running daemon."""
    _reply_exit(_send(_config(config_path, "terminals"), "decommission", terminal_id, wait))


@terminals.command("statement")
@CONFIG
@click.argument("terminal_id")
def terminals_statement(config_path: Path, terminal_id: str) -> None:
    """A terminal's statement as JSON: transactions by status (count, amount),
    open freeze cases and the funds they hold, events not yet delivered.
    Published with its `decommissioned` status when a terminal is retired."""
    from gateway.store import Store
    from gateway.store.reports import terminal_statement

    with Store(_config(config_path, "terminals").database) as store:
        click.echo(json.dumps(terminal_statement(store, terminal_id), indent=2))
