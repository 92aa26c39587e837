"""`posgw center`: run the reference center, ask it questions, send commands.

Parsing and printing only; the work is in `center/`, imported lazily inside
each command (DESIGN.md: only the CLI imports center, and only when asked).
Exit status: 0 done, 1 nothing found / no or bad reply, 2 bad input or
configuration. Output never carries a PAN in clear: events hold only the
masked PAN.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from posgw.cli.center_context import CONFIG_ENV, CenterOptions, config_of
from posgw.cli.common import (
    EXIT_NOT_FOUND,
    center_store,
    database_failed,
    fail,
    plain_table,
    shown_url,
    start_failure_status,
)
from posgw.cli.lazy import LazyCommand, LazyGroup

if TYPE_CHECKING:
    from posgw.center.config import CenterConfig
    from posgw.center.queries import TerminalDay
    from posgw.center.verify import SignatureVerifier

#: Sub-commands in their own module, imported when they run.
SUBCOMMANDS = {
    "gateways": LazyCommand("posgw.cli.center_gateways:gateways",
                            "Register, list or revoke the gateway keys the center trusts."),
    "quarantine": LazyCommand("posgw.cli.center_gateways:quarantine",
                              "Quarantined payloads: counts by reason and the latest ones."),
    "users": LazyCommand("posgw.cli.center_web:users", "Console accounts: add, list, disable."),
    "web": LazyCommand("posgw.cli.center_web:web",
                       "Serve the center console (web) on --listen."),
    "merchants": LazyCommand("posgw.cli.center_merchants:merchants",
                             "The merchant register and fee plans: add, show, list, set-plan."),
    "settlement": LazyCommand("posgw.cli.center_settlement:settlement",
                              "Merchant settlement: import, match, findings, reports."),
    "enroll": LazyCommand("posgw.cli.center_enroll:enroll",
                          "Broker credentials, ACL and keys for a new branch's gateway."),
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", metavar="CENTER.TOML", envvar=CONFIG_ENV,
              type=click.Path(dir_okay=False, path_type=Path),
              help=f"The center configuration (see deploy/center.example.toml); "
                   f"default: ${CONFIG_ENV}.")
@click.option("--client-id", metavar="ID",
              help="Override [mqtt] client_id, to run a second process from the same file. "
                   "Keep it stable across restarts: the broker keeps the session (and the "
                   "messages queued for it) under this id.")
@click.option("-v", "--verbose", is_flag=True, help="Log every connection and quarantine.")
@click.pass_context
def center(ctx: click.Context, config_path: Path | None, client_id: str | None,
           verbose: bool) -> None:
    """The reference payment center: ingest every gateway's transactions,
    answer "did payment X arrive?", total the day, command a branch.

    Without a sub-command it runs the ingest until SIGINT or SIGTERM: it
    subscribes to {prefix}/+/+/tx (shared by every center process of the
    same share_group, "center" by default), checks each event's Ed25519
    signature against the registered key of its gateway, stores it once per
    event_id in batches, only then acknowledges it to the broker, and tells
    each gateway what it stored (signed with [center] command_key). A stopped
    center loses nothing: its persistent session makes the broker keep what
    arrives meanwhile, and gateways keep what it has not confirmed.

    \b
    Examples:
      posgw center -c center.toml                      run the ingest
      posgw center -c center.toml query --rrn 000000000042
      posgw center -c center.toml query --terminal T0001 --stan 000042
      posgw center -c center.toml query --last4 0010 --amount 1250 --date 2025-03-14
      posgw center -c center.toml totals --date 2025-03-14
      posgw center -c center.toml cmd B001 ping --wait-reply 10
      posgw center -c center.toml cmd B001 release CASE-17
      posgw center -c center.toml gateways register gw-b001-1 signing.pub --branch B001
      posgw center -c center.toml gateways list
      posgw center -c center.toml quarantine
      posgw center -c center.toml users add alice --role admin
      posgw center -c center.toml web --listen 127.0.0.1:8080
      posgw center -c center.toml enroll B001 gw-b001-1
      posgw center -c center.toml merchants add M0001 --name "Pho 24" --branch B001 \
          --account VN12ABCD0123456789
      posgw center -c center.toml settlement match --date 2025-03-14
    """
    ctx.obj = CenterOptions(config_path, client_id)
    if ctx.invoked_subcommand is None:
        _run_ingest(config_of(ctx), verbose)


def _run_ingest(config: CenterConfig, verbose: bool) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.service import open_center, serve
    from posgw.protocols.config_error import ConfigError

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("mqtt").setLevel(logging.WARNING)  # paho's per-packet chatter
    try:  # the database and the command key, before a word is said: a refusal is one line
        start = open_center(config)
    except ConfigError as exc:
        fail("center", exc, start_failure_status(exc))
    click.echo(f"posgw center: database {shown_url(config.database)}, broker "
               f"{config.mqtt.host}:{config.mqtt.port}, client id {config.mqtt.client_id}, "
               f"{len(config.gateways)} gateway(s) in the config (and those registered by "
               "`gateways register`)", err=True)
    try:
        counts = serve(config, start)
    except (SQLAlchemyError, OSError) as exc:
        database_failed("center", config.database, exc)
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.quarantined_by_kind.items()))
    click.echo(f"posgw center: stopped; ingested {counts.ingested}, duplicates "
               f"{counts.duplicates}, quarantined {counts.quarantined}"
               f"{f' ({kinds})' if kinds else ''}, seqs missing {counts.seq_missing}",
               err=True)


# --- query ------------------------------------------------------------------


@center.command(short_help="Did a payment arrive? By RRN, terminal+STAN or card+amount+day.")
@click.option("--rrn", metavar="RRN", help="Retrieval reference number (field 37).")
@click.option("--terminal", metavar="TID", help="Terminal id (field 41); with --stan.")
@click.option("--stan", metavar="STAN", help="System trace audit number (field 11); "
                                             "with --terminal.")
@click.option("--last4", metavar="NNNN", help="Last 4 digits of the card; with --amount.")
@click.option("--amount", type=int, metavar="MINOR",
              help="Amount in minor units (1250 = 12.50 EUR); with --last4.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="UTC day, with --last4 and --amount (default: today, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def query(ctx: click.Context, rrn: str | None, terminal: str | None, stan: str | None,
          last4: str | None, amount: int | None, day: datetime | None, as_json: bool) -> None:
    """Did a payment arrive? Find it three ways:

    \b
      --rrn RRN                                the acquirer's reference
      --terminal TID --stan STAN               what the terminal printed
      --last4 NNNN --amount MINOR [--date D]   what a cardholder can tell

    Every stored event that matches is listed (a purchase and its reversal
    are two events). Exit status 0 when something was found, 1 when nothing
    was: `posgw center -c center.toml query --rrn X >/dev/null && echo arrived`.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.queries import by_card_amount_day, by_rrn, by_terminal_stan, event_view

    form = _query_form(rrn, terminal, stan, last4, amount, day)
    config = config_of(ctx)
    store = center_store(config, "center")
    try:
        with store.session() as session:
            if form == "rrn":
                events = by_rrn(session, str(rrn))
            elif form == "terminal":
                events = by_terminal_stan(session, str(terminal), str(stan))
            else:
                on = day.date() if day else datetime.now(UTC).date()
                events = by_card_amount_day(session, str(last4), int(amount or 0), on)
            views = [event_view(event) for event in events]
    except SQLAlchemyError as exc:
        database_failed("center query", config.database, exc)
    finally:
        store.close()
    _print_events(views, as_json)
    if not views:
        sys.exit(EXIT_NOT_FOUND)


def _query_form(rrn: str | None, terminal: str | None, stan: str | None, last4: str | None,
                amount: int | None, day: datetime | None) -> str:
    forms = [name for name, given in (("rrn", rrn is not None),
                                       ("terminal", terminal is not None or stan is not None),
                                       ("card", last4 is not None or amount is not None))
             if given]
    if len(forms) != 1:
        raise click.UsageError("give exactly one of --rrn, --terminal with --stan, "
                               "or --last4 with --amount")
    if forms[0] == "terminal" and (terminal is None or stan is None):
        raise click.UsageError("--terminal and --stan go together")
    if forms[0] == "card" and (last4 is None or amount is None):
        raise click.UsageError("--last4 and --amount go together")
    if last4 is not None and (len(last4) != 4 or not last4.isdigit()):
        raise click.UsageError("--last4 takes the last 4 digits of the card, e.g. 0010")
    if day is not None and forms[0] != "card":
        raise click.UsageError("--date goes with --last4 and --amount")
    return forms[0]


def _print_events(views: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("nothing found", err=True)
        return
    # One key/value block per event: readable in 80 columns, like a jPOS dump.
    blocks = [plain_table(("", ""), [(key, "" if value is None else str(value))
                                      for key, value in view.items()],
                          title=f"event {number} of {len(views)}", header=False)
              for number, view in enumerate(views, 1)]
    click.echo("\n\n".join(blocks))


# --- totals -----------------------------------------------------------------


@center.command(short_help="A day's settled, returned, net and held sums per terminal.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="UTC day (default: today, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def totals(ctx: click.Context, day: datetime | None, as_json: bool) -> None:
    """A day's totals per branch, terminal and currency, in minor units.

    \b
      settled    approved and settled: count and sum
      returned   reversed, voided and refunded: count and sum
      net        settled minus returned: what the day is worth
      held       frozen by a risk rule, waiting for release or return
      declined   count only
    """
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.queries import terminal_days

    on = day.date() if day else datetime.now(UTC).date()
    config = config_of(ctx)
    store = center_store(config, "center")
    try:
        with store.session() as session:
            days = terminal_days(session, on)
    except SQLAlchemyError as exc:
        database_failed("center totals", config.database, exc)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([_day_json(d) for d in days], indent=2))
    else:
        _print_totals(on, days)


def _day_json(day: TerminalDay) -> dict[str, Any]:
    return {"day": day.day, "branch_id": day.branch_id, "terminal_id": day.terminal_id,
            "currency": day.currency, "settled_count": day.settled_count,
            "settled_minor": day.settled_minor, "returned_count": day.returned_count,
            "returned_minor": day.returned_minor, "net_minor": day.net_minor,
            "held_count": day.held_count, "held_minor": day.held_minor,
            "declined_count": day.declined_count}


#: Columns of the totals table; the numbers (from "settled" on) align right.
TOTALS_HEADERS = ("branch", "terminal", "cur", "settled", "returned", "net", "held", "declined")


def _print_totals(on: date, days: list[TerminalDay]) -> None:
    """A plain fixed-width table: a day of a large fleet is thousands of
    rows, which rich took 1.4 s to lay out for 1,000 terminals."""
    rows = [_totals_row(day.branch_id, day.terminal_id, day.currency, [day]) for day in days]
    for currency in sorted({day.currency for day in days}):
        rows.append(_totals_row("all", "", currency,
                                [day for day in days if day.currency == currency]))
    click.echo(plain_table(TOTALS_HEADERS, rows, title=f"{on.isoformat()} (UTC)",
                           right=range(3, len(TOTALS_HEADERS))))
    if not days:
        click.echo("no events stored for that day", err=True)


def _totals_row(branch: str, terminal: str, currency: str,
                days: list[TerminalDay]) -> tuple[str, ...]:
    """One terminal's day, or (branch "all") the sum of several."""
    def total(attribute: str) -> int:
        return sum(int(getattr(day, attribute)) for day in days)

    return (branch, terminal, currency,
            f"{total('settled_count')} / {total('settled_minor')}",
            f"{total('returned_count')} / {total('returned_minor')}", str(total("net_minor")),
            f"{total('held_count')} / {total('held_minor')}", str(total("declined_count")))


# --- cmd --------------------------------------------------------------------


class _CmdCommand(click.Command):
    """`cmd --help` lists the actions, read from center.commands on demand."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from posgw.center.commands import ACTIONS

        with formatter.section("Actions"):
            formatter.write_dl([(name, action.summary) for name, action in ACTIONS.items()])


@center.command(cls=_CmdCommand,
                short_help="Ping, release, return or decommission at a branch.")
@click.argument("branch")
@click.argument("action")
@click.argument("args", nargs=-1)
@click.option("--wait-reply", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Wait this long for the gateway's reply and print it.")
@click.option("--unsigned", is_flag=True,
              help="Send the command unsigned although center.toml names no command_key "
                   "(only a gateway with [commands] insecure_obey_unsigned obeys it).")
@click.pass_context
def cmd(ctx: click.Context, branch: str, action: str, args: tuple[str, ...],
        wait_reply: float | None, unsigned: bool) -> None:
    """Send a command to BRANCH's gateway: publish it QoS 1 on
    {prefix}/BRANCH/cmd and print it (JSON, with its command_id).

    The command is signed with `[center] command_key` (gateways obey only
    commands signed with the key their `[keys] center_public_key` names).
    Without a command key it is refused (exit 2) unless --unsigned says to
    send it unsigned.
    With --wait-reply, the reply topic {prefix}/BRANCH/cmd/reply is
    subscribed first; the reply with the same command_id is checked against
    the registered gateway keys and printed. Exit status 0 when the outcome
    is "done", 1 for any other outcome or when no trusted reply came in time.

    A decommissioned terminal cannot be brought back: no command undoes it,
    and its state is kept in the gateway's database across restarts. To use
    the device again, give it a new terminal id (field 41) and configure that
    id ([[terminals]] or a listener's allow list).
    """
    import aiomqtt

    from posgw.center.command_key import CommandKeyError, load_command_key, sign_command
    from posgw.center.commands import CommandError, ReplyError, build_command, send_command
    config = config_of(ctx)
    try:
        command = build_command(branch, action, args)
    except CommandError as exc:
        raise click.UsageError(str(exc)) from None
    if config.command_key_path is None and not unsigned:
        fail("center cmd", "no [center] command_key: a gateway obeys only signed commands. "
             "Make the pair with `posgw center command-key DIR`, name DIR/command.key as "
             "[center] command_key and give DIR/command.pub to each gateway ([keys] "
             "center_public_key); or send it unsigned with --unsigned")
    if config.command_key_path is not None:
        try:
            command = sign_command(command, load_command_key(config.command_key_path))
        except CommandKeyError as exc:
            fail("center cmd", f"[center] command_key: {exc}")
    reply, untrusted = None, None
    try:
        import asyncio

        reply = asyncio.run(send_command(config.mqtt, command, wait_reply_s=wait_reply,
                                         verifier=trusted_verifier(config)))
    except ReplyError as exc:
        untrusted = exc  # the command itself went out: print it first
    except (aiomqtt.MqttError, OSError) as exc:
        fail("center cmd", f"broker {config.mqtt.host}:{config.mqtt.port}: {exc}")
    click.echo(json.dumps(command))
    if untrusted is not None:
        fail("center cmd", untrusted, EXIT_NOT_FOUND)
    if wait_reply is None:
        return
    if reply is None:
        fail("center cmd", f"no reply within {wait_reply:g} s", EXIT_NOT_FOUND)
    click.echo(json.dumps(reply))
    if reply.get("outcome") != "done":
        sys.exit(EXIT_NOT_FOUND)


# --- shared -----------------------------------------------------------------


@center.command("command-key", short_help="Write the key pair center commands are signed with.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Replace an existing pair: every gateway then needs the new command.pub.")
def command_key(directory: Path, force: bool) -> None:
    """Write command.key (0600; name it as [center] command_key in
    center.toml) and command.pub (give it to every gateway as [keys]
    center_public_key) into DIRECTORY. A gateway that has it obeys only
    commands `posgw center cmd` signed with command.key."""
    from posgw.center.command_key import PRIVATE_FILE, CommandKeyError, generate_command_key

    try:
        public = generate_command_key(directory, overwrite=force)
    except (CommandKeyError, OSError) as exc:
        fail("center command-key", exc)
    click.echo(f"wrote {directory / PRIVATE_FILE} (keep it at head office) and {public} "
               f"(for every gateway's [keys] center_public_key)")


def trusted_verifier(config: CenterConfig) -> SignatureVerifier:
    """center.toml's gateway keys and those registered in the database (when
    it exists), minus the revoked ones: what `cmd --wait-reply` trusts."""
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.db import CenterStore
    from posgw.center.registry import build_verifier

    try:
        store: CenterStore | None = CenterStore(config.database, create=False)
    except FileNotFoundError:
        store = None
    try:
        return build_verifier(store, config.gateways)
    except SQLAlchemyError as exc:
        database_failed("center", config.database, exc)
    finally:
        if store is not None:
            store.close()
