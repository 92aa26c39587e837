"""`posgw status`: the operator's view of a branch gateway, from its database alone.

It reads what the daemon last recorded (heartbeat, broker link, terminals),
the ledger and the outbox, so it answers the same way with the daemon up or
down and never touches the broker. The store is imported on first use: it
costs half a second that `posgw decode` should not pay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from posgw.cli.common import fail, gateway_config

if TYPE_CHECKING:
    from posgw.gateway.config import TerminalConfig
    from posgw.gateway.store import GatewayRuntime, Store, TerminalRecord

#: The daemon beats every ~2 s; 10 s of silence (several missed beats, room
#: for a slow group commit) means it is gone or hung.
HEARTBEAT_FRESH_S = 10.0


@dataclass(frozen=True, slots=True)
class Target:
    """Which database to read and what the configuration says about it."""

    database: str
    branch_id: str | None = None
    gateway_id: str | None = None
    terminals: tuple[TerminalConfig, ...] = ()
    #: The config's command trust: the center key's path, or None when it obeys
    #: unsigned commands; `known` False when read with --database alone.
    center_public_key: str | None = None
    known: bool = False



@click.command()
@click.option("-c", "--config", "config_path",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The gateway's TOML configuration (database, configured terminals).")
@click.option("--database", metavar="URL",
              help="Read this database instead (sqlite:////ABSOLUTE/PATH or "
                   "postgresql+psycopg://...); overrides the configuration's.")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The UTC day to total.  [default: today, UTC]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys below).")
def status(config_path: Path | None, database: str | None, day: datetime | None,
           as_json: bool) -> None:
    """Daemon, broker link, terminals, a day's totals and the outbox, read
    from the gateway's database: works with the daemon up or down and never
    connects to the broker. Needs -c or --database.

    The daemon is "running" when its heartbeat is under 10 s old. The broker
    link is as the daemon last reported it ("unknown" when it is not
    running). Terminals configured but never seen are listed as never_seen.

    \b
    --json keys:
      gateway    branch_id, gateway_id (null when unknown), database (no password)
      daemon     state (running | not_running | never_started), pid, started_at,
                 heartbeat_at, heartbeat_age_s, stopped_at, since,
                 reason (stopped | heartbeat_lost)
      commands   unsigned_obeyed (true: [commands] insecure_obey_unsigned, anyone
                 on the broker commands this gateway; null without -c),
                 center_public_key (the path, or null)
      broker     address (host:port), state (connected | disconnected | unknown),
                 connected (last reported), since
      terminals  list of id, state (online | offline | decommissioned | never_seen),
                 profile, driver, merchant_id, last_seen_at, configured
      totals     date (YYYY-MM-DD, UTC), rows: list of status, currency, count,
                 amount_minor (integer, minor units)
      outbox     depth (events not done: pending + published_unconfirmed),
                 pending (not yet acknowledged by the broker), published_unconfirmed
                 (acknowledged, not yet confirmed by the center), oldest_created_at,
                 oldest_age_s (the oldest event not done), center_silent_since (set
                 while the running daemon finds the center silent, else null)
      unreconciled  batches closed that day whose totals did not match the
                 ledger: terminal_id, closed_at, differences, missing_at_gateway,
                 missing_at_terminal (counts per kind: debits, credits, ...),
                 amount_differences (terminal minus ledger), report_event_id
                 (the reconciliation.v1 event sent to the center)
    Times are UTC ISO 8601 ("...Z") or null. Exit status 2 when the
    configuration or the database cannot be read.
    """
    from posgw.drivers.clock import SYSTEM_CLOCK

    target = _target(config_path, database)
    now = SYSTEM_CLOCK.utc_now()
    report = _collect(target, day.date() if day else now.date(), now)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)


def _target(config_path: Path | None, database: str | None) -> Target:
    if config_path is None:
        if database is None:
            fail("status", "give -c gateway.toml or --database URL")
        return Target(database)
    config = gateway_config(config_path, "status")
    return Target(database or config.database, config.branch_id, config.gateway_id,
                  config.terminals, config.center_public_key, known=True)


def _open_store(database: str) -> Store:
    """Open an existing database; never create one (a typo must not look like
    an empty, healthy gateway)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from posgw.gateway.store import Store

    try:
        url = make_url(database)
    except ArgumentError:
        # Not echoed: a mistyped URL may still hold a password.
        fail("status", "the database is not a URL (sqlite:////ABSOLUTE/PATH or postgresql+psycopg://...)")
    path = url.database if url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:":
        try:
            Path(path).stat()
        except FileNotFoundError:
            fail("status", f"{path}: no such database file {_missing_hint(path)}")
        except OSError as exc:  # e.g. the state directory is private to the posgw user
            fail("status", f"{path}: {exc.strerror}")
    return Store(database)


def _missing_hint(path: str) -> str:
    if Path(path).is_absolute():
        return "(has `posgw run` started with this config?)"
    # sqlite:///var/... is relative (absolute takes four slashes): systemd
    # starts the daemon in /, where it resolves; a shell elsewhere does not.
    return f"in {Path.cwd()} (a relative path; sqlite:////{path} is absolute)"


def _collect(target: Target, day: date, now: datetime) -> dict[str, Any]:
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.gateway.store import StoreError

    try:
        with _open_store(target.database) as store:
            return _report(store, target, day, now)
    except (StoreError, SQLAlchemyError) as exc:
        fail("status", _one_line(exc))


def _one_line(exc: Exception) -> str:
    # SQLAlchemy appends SQL and a help link on further lines; the cause is first.
    cause = getattr(exc, "orig", None) or exc
    return str(cause).strip().splitlines()[0] if str(cause).strip() else type(exc).__name__


def _report(store: Store, target: Target, day: date, now: datetime) -> dict[str, Any]:
    from posgw.gateway.store.reports import daily_totals, unreconciled_batches

    runtime = store.runtime()
    daemon = _daemon(runtime, now)
    stats = store.outbox_stats()
    gateway_id = target.gateway_id or (runtime.gateway_id if runtime else None) or None
    return {
        "gateway": {"branch_id": target.branch_id, "gateway_id": gateway_id,
                    "database": store.display_url},
        "daemon": daemon,
        "commands": _commands(target),
        "broker": _broker(runtime, running=daemon["state"] == "running"),
        "terminals": _terminals(store.terminals(), target.terminals),
        "totals": {"date": day.isoformat(),
                   "rows": [{"status": t.status, "currency": t.currency, "count": t.count,
                             "amount_minor": t.amount_minor}
                            for t in daily_totals(store, day)]},
        "outbox": {"depth": stats.depth, "pending": stats.pending,
                   "published_unconfirmed": stats.published,
                   "oldest_created_at": _iso(stats.oldest_created_at),
                   "oldest_age_s": _rounded(stats.oldest_age_s(now)),
                   "center_silent_since": _iso(runtime.center_silent_since)
                   if runtime is not None and daemon["state"] == "running" else None},
        "unreconciled": _unreconciled(unreconciled_batches(store, day)),
    }


def _commands(target: Target) -> dict[str, Any]:
    if not target.known:
        return {"unsigned_obeyed": None, "center_public_key": None}
    return {"unsigned_obeyed": target.center_public_key is None,
            "center_public_key": target.center_public_key}


def _unreconciled(batches: list[Any]) -> list[dict[str, Any]]:
    if not batches:  # the usual day: skip importing the pipeline (a third of the run time)
        return []
    from posgw.gateway.pipeline.settlement import discrepancies

    return [{"terminal_id": batch.terminal_id, "closed_at": _iso(batch.closed_at),
             "differences": batch.differences, **discrepancies(batch.differences),
             "report_event_id": batch.report_event_id} for batch in batches]


def _daemon(runtime: GatewayRuntime | None, now: datetime) -> dict[str, Any]:
    if runtime is None or runtime.started_at is None:
        return {"state": "never_started", "pid": None, "started_at": None,
                "heartbeat_at": None, "heartbeat_age_s": None, "stopped_at": None,
                "since": None, "reason": None}
    beat, stopped = runtime.heartbeat_at, runtime.stopped_at
    # A clean stop writes stopped_at after the last beat; a crash leaves only the beat.
    stopped_cleanly = stopped is not None and (beat is None or stopped >= beat)
    age = None if beat is None else (now - beat).total_seconds()
    fresh = age is not None and age <= HEARTBEAT_FRESH_S
    since: datetime | None
    if fresh and not stopped_cleanly:
        state, since, reason = "running", runtime.started_at, None
    elif stopped_cleanly:
        state, since, reason = "not_running", stopped, "stopped"
    else:
        state, since, reason = "not_running", beat or runtime.started_at, "heartbeat_lost"
    return {"state": state, "pid": runtime.pid or None, "started_at": _iso(runtime.started_at),
            "heartbeat_at": _iso(beat), "heartbeat_age_s": _rounded(age),
            "stopped_at": _iso(stopped), "since": _iso(since), "reason": reason}


def _broker(runtime: GatewayRuntime | None, *, running: bool) -> dict[str, Any]:
    if runtime is None:
        return {"address": None, "state": "unknown", "connected": None, "since": None}
    reported = "connected" if runtime.broker_connected else "disconnected"
    return {"address": runtime.broker or None, "state": reported if running else "unknown",
            "connected": runtime.broker_connected, "since": _iso(runtime.broker_changed_at)}


def _terminals(rows: list[TerminalRecord],
               configured: tuple[TerminalConfig, ...]) -> list[dict[str, Any]]:
    """Every terminal the daemon recorded, plus configured ones it has not seen yet."""
    configured_ids = {t.id for t in configured}
    views = {row.terminal_id: {
        "id": row.terminal_id, "state": row.state, "profile": row.profile,
        "driver": row.driver, "merchant_id": row.merchant_id,
        "last_seen_at": _iso(row.last_seen_at), "configured": row.terminal_id in configured_ids,
    } for row in rows}
    for terminal in configured:
        views.setdefault(terminal.id, {
            "id": terminal.id, "state": "never_seen", "profile": terminal.profile,
            "driver": terminal.driver, "merchant_id": terminal.merchant_id,
            "last_seen_at": None, "configured": True,
        })
    return [views[key] for key in sorted(views)]


def _iso(moment: datetime | None) -> str | None:
    from posgw.protocols.contract import utc_iso

    return None if moment is None else utc_iso(moment.replace(microsecond=0))


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


# --- human output -------------------------------------------------------------


def _print_report(report: dict[str, Any]) -> None:
    console = Console()
    gateway = report["gateway"]
    title = " ".join(part for part in (
        f"gateway {gateway['gateway_id']}" if gateway["gateway_id"] else "gateway",
        f"(branch {gateway['branch_id']})" if gateway["branch_id"] else "") if part)
    console.print(f"[bold]{title}[/]  {gateway['database']}", highlight=False)
    summary = Table(box=None, show_header=False, pad_edge=False)
    summary.add_row("daemon", _daemon_text(report["daemon"]))
    summary.add_row("broker", _broker_text(report["broker"]))
    if report["commands"]["unsigned_obeyed"] is not None:
        summary.add_row("commands", _commands_text(report["commands"]))
    summary.add_row("outbox", _outbox_text(report["outbox"]))
    console.print(summary)
    console.print(_terminal_table(report["terminals"]))
    console.print(_totals_table(report["totals"]))
    for batch in report["unreconciled"]:
        console.print(f"[red]batch of {batch['terminal_id']} closed {batch['closed_at']} "
                      f"does not reconcile:[/] {_discrepancy_text(batch)}", highlight=False)


def _discrepancy_text(batch: dict[str, Any]) -> str:
    """E.g. `missing at gateway: 1 debits; amounts (terminal - ledger): debits +12.00`."""
    from posgw.protocols.currency import format_amount

    parts = [f"missing at {where}: " + ", ".join(f"{n} {name}" for name, n in sorted(
        batch[f"missing_at_{where}"].items())) for where in ("gateway", "terminal")
        if batch[f"missing_at_{where}"]]
    if batch["amount_differences"]:
        parts.append("amounts (terminal - ledger): " + ", ".join(
            f"{name} {'+' if delta > 0 else '-'}{format_amount(abs(delta), '')}"
            for name, delta in sorted(batch["amount_differences"].items())))
    return "; ".join(parts) or "totals differ"


def _daemon_text(daemon: dict[str, Any]) -> str:
    if daemon["state"] == "never_started":
        return "[yellow]never started[/] (no heartbeat recorded)"
    if daemon["state"] == "running":
        return (f"[green]running[/], pid {daemon['pid']}, since {daemon['started_at']} "
                f"(heartbeat {_age(daemon['heartbeat_age_s'])} ago)")
    why = "stopped" if daemon["reason"] == "stopped" else "heartbeat lost: crashed or hung"
    return f"[red]not running[/] since {daemon['since']} ({why})"


def _broker_text(broker: dict[str, Any]) -> str:
    address = broker["address"] or "broker"
    if broker["connected"] is None:
        return "[yellow]unknown[/] (never reported)"
    reported = "connected" if broker["connected"] else "disconnected"
    since = f" since {broker['since']}" if broker["since"] else ""
    if broker["state"] == "unknown":
        return (f"[yellow]unknown[/] (daemon not running; last reported {reported} "
                f"to {address}{since})")
    colour = "green" if broker["connected"] else "red"
    return f"[{colour}]{reported}[/] to {address}{since}"


def _commands_text(commands: dict[str, Any]) -> str:
    if commands["unsigned_obeyed"]:
        return ("[red]UNSIGNED commands obeyed[/] ([commands] insecure_obey_unsigned): anyone "
                "who can publish on the broker commands this gateway")
    return f"signed only (center key {commands['center_public_key']})"


def _outbox_text(outbox: dict[str, Any]) -> str:
    if outbox["depth"] == 0:
        return "empty (everything delivered)"
    text = (f"{outbox['depth']} undelivered ({outbox['pending']} pending, "
            f"{outbox['published_unconfirmed']} published and not confirmed by the center), "
            f"oldest {_age(outbox['oldest_age_s'])} old ({outbox['oldest_created_at']})")
    if outbox["center_silent_since"] is None:
        return text
    return f"{text}\n[red]{_silence(outbox)}[/]"


def _silence(outbox: dict[str, Any]) -> str:
    from posgw.gateway.forward.silence import silence_text

    since = datetime.fromisoformat(outbox["center_silent_since"].replace("Z", "+00:00"))
    silent_for = (datetime.now(since.tzinfo) - since).total_seconds()
    return silence_text(silent_for, outbox["published_unconfirmed"])


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _terminal_table(terminals: list[dict[str, Any]]) -> Table:
    table = Table("terminal", "state", "profile", "driver", "merchant", "last seen",
                  title="terminals", title_justify="left", box=None, pad_edge=False)
    colours = {"online": "green", "offline": "red", "never_seen": "yellow"}
    for t in terminals:
        colour = colours.get(t["state"], "dim")
        table.add_row(t["id"], f"[{colour}]{t['state'].replace('_', ' ')}[/]", t["profile"],
                      t["driver"], t["merchant_id"], t["last_seen_at"] or "never")
    if not terminals:
        table.add_row("(none recorded or configured)", "", "", "", "", "")
    return table


def _totals_table(totals: dict[str, Any]) -> Table:
    from posgw.protocols.currency import format_amount

    table = Table("status", "currency", "count", "amount", title=f"totals {totals['date']} (UTC)",
                  title_justify="left", box=None, pad_edge=False)
    for row in totals["rows"]:
        table.add_row(row["status"], row["currency"], str(row["count"]),
                      format_amount(row["amount_minor"], row["currency"]))
    if not totals["rows"]:
        table.add_row("(no transactions)", "", "", "")
    return table
