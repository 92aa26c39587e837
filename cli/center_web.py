"""`posgw center web` (the console) and `posgw center users` (its accounts).

Parsing and printing only: the console is center/web/. Passwords come from
a prompt or a file, never from the command line (it shows in `ps`).
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from posgw.cli.center_context import config_of
from posgw.cli.common import center_store, database_failed, fail, plain_table, shown_url

if TYPE_CHECKING:
    from posgw.center.web.accounts import Account


@click.command(short_help="Serve the center console (web) on --listen.")
@click.option("--listen", metavar="HOST:PORT",
              help="Address to serve on (default: [web] listen, else 127.0.0.1:8080).")
@click.pass_context
def web(ctx: click.Context, listen: str | None) -> None:
    """Serve the center console: search "did it arrive?", each transaction's
    story, accounts and the audit log, over the center database.

    Put it behind a TLS-terminating proxy when it is not on loopback: its
    cookies are Secure, so browsers send them only over HTTPS (or to
    127.0.0.1). Accounts come from `posgw center users add`.
    """
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.web.app import create_app

    config = config_of(ctx)
    host, _, port = (listen or config.web.listen).rpartition(":")
    if not host or not port.isdigit():
        fail("center web", f"--listen HOST:PORT; got {listen!r}")
    store = center_store(config, "center web", create=True)
    try:
        app = create_app(config, store)
    except SQLAlchemyError as exc:
        database_failed("center web", config.database, exc)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"posgw center web: database {shown_url(config.database)}, "
               f"console on http://{host}:{port}/", err=True)
    # No access log: a URL typed by hand could hold anything; the audit
    # table records who did what.
    uvicorn.run(app, host=host.strip("[]"), port=int(port), access_log=False,
                log_level="info", server_header=False)
    store.close()


@click.group(short_help="Console accounts: add, list, disable.")
def users() -> None:
    """Console accounts. Roles: viewer (search and read), risk (case actions
    and evidence), admin (accounts, audit log, and what later versions add)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "risk", "admin"]), required=True)
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the password from this file's first line (else a prompt).")
@click.option("--one-time", is_flag=True,
              help="Generate a one-time password and print it: the account must choose "
                   "its own at its first sign-in.")
@click.option("--language", type=click.Choice(["", "en", "vi", "zh_Hans"]), default="",
              help="The account's language (default: the browser's).")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, password_file: Path | None,
              one_time: bool, language: str) -> None:
    """Add an account NAME with ROLE."""
    from posgw.center.web import audit
    from posgw.center.web.accounts import AccountError, add_user, one_time_password
    from posgw.center.web.models import create_console_tables

    if one_time and password_file is not None:
        fail("center users add", "--one-time or --password-file, not both")
    password = one_time_password() if one_time else _password(password_file)
    store = center_store(config_of(ctx), "center users", create=True)
    try:
        create_console_tables(store.engine)
        add_user(store.engine, name, role, password, language=language, must_change=one_time)
        audit.record(store.engine, _operator(), "add account", "ok", object=f"{name} ({role})")
    except AccountError as exc:
        fail("center users add", exc)
    finally:
        store.close()
    click.echo(f"added {name} ({role})")
    if one_time:
        click.echo(f"one-time password: {password} (to be replaced at the first sign-in)")


def _operator() -> str:
    """Who ran the command, for the audit log: the account on this host."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (a container)
        return "cli:uid" + str(os.getuid())


def _password(path: Path | None) -> str:
    if path is None:
        return str(click.prompt("password", hide_input=True, confirmation_prompt=True))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        fail("center users add", f"{path}: {exc.strerror or 'cannot read'}")
    return lines[0] if lines else ""


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """The accounts, their role and state."""
    from posgw.center.web.accounts import list_users
    from posgw.center.web.models import create_console_tables

    store = center_store(config_of(ctx), "center users", create=True)
    try:
        create_console_tables(store.engine)
        accounts = list_users(store.engine)
    finally:
        store.close()
    rows = [(a.name, a.role, a.language or "(browser)", _state(a)) for a in accounts]
    click.echo(plain_table(("name", "role", "language", "state"), rows))


def _state(account: Account) -> str:
    if account.disabled:
        return "disabled"
    if account.locked_until:
        return f"locked until {account.locked_until:%Y-%m-%d %H:%M} UTC"
    return "active, one-time password" if account.must_change else "active"


@users.command("disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """NAME can no longer sign in; its open sessions end at their next request."""
    from posgw.center.web import audit
    from posgw.center.web.accounts import AccountError, disable_user
    from posgw.center.web.models import create_console_tables

    store = center_store(config_of(ctx), "center users", create=True)
    try:
        create_console_tables(store.engine)
        disable_user(store.engine, name)
        audit.record(store.engine, _operator(), "disable account", "ok", object=name)
    except AccountError as exc:
        fail("center users disable", exc, status=1)
    finally:
        store.close()
    click.echo(f"disabled {name}")
