"""`posgw cases` and `posgw terminals`: the branch operator's views and actions.

Views read the gateway's database (daemon up or down). Actions go to the
running daemon as a command on the branch's `cmd` topic — the same path the
center uses — because the daemon is the one writer of the outbox: a second
process writing events would break the per-gateway sequence. `cases
evidence` stores the file itself (in the evidence directory, named by its
SHA-256), then asks the daemon to record it, which checks the stored bytes.
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

from posgw.cli.common import fail, gateway_config

CONFIG = click.option("-c", "--config", "config_path", required=True, metavar="GATEWAY.TOML",
                      type=click.Path(dir_okay=False, path_type=Path),
                      help="The gateway's configuration (database, broker, branch).")



def _config(config_path: Path, what: str) -> Any:
    return gateway_config(config_path, what)


def _rows(config: Any, model: Any) -> list[Any]:
    from sqlmodel import select

    from posgw.gateway.store import Store

    with Store(config.database) as store, store.session() as session:
        return list(session.scalars(select(model)))


def _send(config: Any, action: str, argument: str, wait_s: float) -> dict[str, Any] | None:
    """Publish a command.v1 to this branch's daemon; its reply, or None."""
    from posgw.center.commands import build_command

    return _publish(config, build_command(config.branch_id, action, [argument]), wait_s)


def _publish(config: Any, command: dict[str, Any], wait_s: float) -> dict[str, Any] | None:
    from posgw.center.commands import send_command
    from posgw.drivers.mqtt import MqttConfig

    if config.center_public_key is not None:  # the daemon obeys only signed commands
        command = _signed_by_this_gateway(config, command)
    mqtt = config.mqtt
    broker = MqttConfig(mqtt.host, mqtt.port, topic_prefix=mqtt.topic_prefix,
                        username=mqtt.username, password=mqtt.password, tls_ca=mqtt.tls_ca,
                        tls_cert=mqtt.tls_cert, tls_key=mqtt.tls_key)
    return asyncio.run(send_command(broker, command, wait_reply_s=wait_s))


def _reply_exit(reply: dict[str, Any] | None) -> NoReturn:
    if reply is None:
        click.echo("no reply from the daemon (is it running and connected?)", err=True)
        sys.exit(1)
    click.echo(f"{reply.get('outcome')}: {reply.get('detail', '')}")
    sys.exit(0 if reply.get("outcome") == "done" else 1)


def _case_views(config: Any, case_id: str | None = None) -> list[dict[str, Any]]:
    """Cases as `cases.case_view` shows them (oldest first), with their evidence files."""
    from sqlmodel import select

    from posgw.drivers.clock import SYSTEM_CLOCK
    from posgw.gateway.cases import case_view
    from posgw.gateway.store import FreezeCase, Store
    from posgw.gateway.store.models import CaseEvidence

    now = SYSTEM_CLOCK.utc_now()
    with Store(config.database) as store, store.session() as session:
        query = select(FreezeCase).order_by(FreezeCase.opened_at)  # type: ignore[arg-type]
        if case_id is not None:
            query = query.where(FreezeCase.id == case_id)
        files: dict[str, list[Any]] = {}
        for row in session.scalars(select(CaseEvidence).order_by(CaseEvidence.id)):  # type: ignore[arg-type]
            files.setdefault(row.case_id, []).append(row)
        return [case_view(case, files.get(case.id, []), now) for case in session.scalars(query)]


@click.group()
def cases() -> None:
    """Freeze cases: funds held when a risk rule fired (`list`, `show`, `evidence`,
    `release`, `return`, `expire`)."""


@cases.command("list")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def cases_list(config_path: Path, as_json: bool) -> None:
    """Every case: id, status, terminal, rule, opened, first response due and
    whether it is overdue (still open past it), evidence files (times UTC)."""
    items = _case_views(_config(config_path, "cases"))
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    table = Table("case", "status", "terminal", "rule", "opened (UTC)", "response due",
                  "files", title="Freeze cases")
    for item in items:
        due = _minute(item["first_response_due_at"])
        table.add_row(item["id"], item["status"], item["terminal_id"], item["rule"],
                      _minute(item["opened_at"]),
                      f"[red]OVERDUE[/] {due}" if item["overdue"] else due,
                      str(len(item["evidence_files"])))
    Console().print(table)


def _minute(iso: str | None) -> str:
    """`2025-03-14T09:30:12.5Z` as `2025-03-14 09:30` (UTC); the JSON keeps it whole."""
    return iso[:16].replace("T", " ") if iso else "-"


@cases.command("show")
@CONFIG
@click.argument("case_id")
def cases_show(config_path: Path, case_id: str) -> None:
    """One case as JSON: its deadlines, the rules that fired and the transactions
    involved (`evidence`), and the files submitted for it (`evidence_files`)."""
    found = _case_views(_config(config_path, "cases"), case_id)
    if not found:
        click.echo(f"no case {case_id}", err=True)
        sys.exit(1)
    click.echo(json.dumps(found[0], indent=2))


def _signed_by_this_gateway(config: Any, command: dict[str, Any]) -> dict[str, Any]:
    from posgw.gateway.security.keys import KeyFileError, load_signer

    try:
        return load_signer(config.keys_dir).sign(command)
    except (KeyFileError, OSError) as exc:
        fail("sign command", f"{exc} (the daemon obeys only signed commands)")


@cases.command("evidence")
@CONFIG
@click.argument("case_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "submitted_by", required=True, metavar="NAME",
              help="Who submits it (kept with the file's hash and the time).")
@click.option("--wait", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the daemon's reply.")
def cases_evidence(config_path: Path, case_id: str, file: Path, submitted_by: str,
                   wait: float) -> None:
    """Submit FILE as evidence for CASE_ID: stored once by its SHA-256 in the
    evidence directory ([cases] evidence_dir), then recorded by the running
    daemon, which moves an open case to evidence_submitted. A file that shows
    a card number is refused: mask it first (first 6, last 4)."""
    from posgw.center.commands import command_payload
    from posgw.gateway.evidence import EvidenceError, EvidenceStore

    config = _config(config_path, "cases")
    store = EvidenceStore(config.cases.evidence_dir, max_bytes=config.cases.evidence_max_bytes)
    try:
        item = store.put(file, submitted_by=submitted_by)
    except (EvidenceError, OSError) as exc:
        fail("cases evidence", exc)
    command = command_payload(config.branch_id, "submit_evidence", case_id=case_id,
                              evidence=item.as_dict())
    _reply_exit(_publish(config, command, wait))


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
cases.add_command(_resolve_command(
    "expire", "expire", "Close an abandoned case now: its funds go back to the card "
    "(sent as `refund`), the case ends `expired`."))


@click.group()
def terminals() -> None:
    """The branch's terminals (`list`, `statement`) and their retirement
    (`decommission`, for good: a decommissioned terminal cannot be brought back)."""


@terminals.command("list")
@CONFIG
def terminals_list(config_path: Path) -> None:
    """Every terminal the gateway knows: state, profile, driver, last seen."""
    from posgw.gateway.store import TerminalRecord

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
    it did has reached the center. Asks the running daemon.

    A decommissioned terminal cannot be brought back: no command undoes it,
    and its state is kept in the gateway's database across restarts. To use
    the device again, give it a new terminal id (field 41) and configure that
    id ([[terminals]] or a listener's allow list).
    """
    _reply_exit(_send(_config(config_path, "terminals"), "decommission", terminal_id, wait))


@terminals.command("statement")
@CONFIG
@click.argument("terminal_id")
def terminals_statement(config_path: Path, terminal_id: str) -> None:
    """A terminal's statement as JSON: transactions by status (count, amount),
    open freeze cases and the funds they hold, events not yet delivered.
    Published with its `decommissioned` status when a terminal is retired."""
    from posgw.gateway.store import Store
    from posgw.gateway.store.reports import terminal_statement

    with Store(_config(config_path, "terminals").database) as store:
        click.echo(json.dumps(terminal_statement(store, terminal_id), indent=2))
