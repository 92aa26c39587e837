"""What every `posgw` command shares: failing, loading a config, opening a
store, printing a table.

Each helper imports its heavy dependency (SQLAlchemy, rich, the config
modules) inside the function, so importing this module costs only click:
`posgw --help` and `posgw decode` must not pay for the database layer.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from posgw.center.config import CenterConfig
    from posgw.center.db import CenterStore
    from posgw.gateway.config import GatewayConfig
    from posgw.protocols.profile import Profile

#: Bad input or configuration: the user must change something (click's own
#: usage errors exit 2 too).
EXIT_BAD_INPUT = 2
#: Nothing found, a check failed, or no (good) reply.
EXIT_NOT_FOUND = 1


def start_failure_status(refusal: Exception) -> int:
    """A daemon's start refused: 2 when the operator must change something (the
    units' RestartPreventExitStatus=2), 1 when a database server is only not
    reachable now, so systemd tries again."""
    from posgw.drivers.database_checks import DatabaseUnavailable

    return 1 if isinstance(refusal, DatabaseUnavailable) else EXIT_BAD_INPUT


def fail(what: str, reason: object, status: int = EXIT_BAD_INPUT) -> NoReturn:
    """One line on stderr, `posgw WHAT: REASON`, then exit (2 by default)."""
    click.echo(f"posgw {what}: {reason}", err=True)
    sys.exit(status)


# --- configuration ------------------------------------------------------------


def gateway_config(path: Path, what: str) -> GatewayConfig:
    """The gateway's TOML file, or exit 2 with "file: key: reason"."""
    from posgw.gateway.config import load_config
    from posgw.protocols.config_error import ConfigError
    from posgw.protocols.iso8583.errors import SpecError  # a profile the config names

    try:
        return load_config(path)
    except (ConfigError, SpecError) as exc:
        fail(what, exc)


def center_config(path: Path, what: str) -> CenterConfig:
    """The center's TOML file, or exit 2 with "file: key: reason"."""
    from posgw.center.config import load_center_config
    from posgw.protocols.config_error import ConfigError

    try:
        return load_center_config(path)
    except ConfigError as exc:
        fail(what, exc)


def firmware_profile(name_or_path: str) -> Profile:
    """A shipped profile by name, or a profile file, or exit 2 naming the problem."""
    from posgw.gateway.profiles import load_profile
    from posgw.protocols.iso8583.errors import Iso8583Error

    try:
        return load_profile(name_or_path)
    except Iso8583Error as exc:
        fail("profile", exc)


# --- databases ----------------------------------------------------------------


def shown_url(url: str) -> str:
    """A database URL fit to print: its password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # a malformed URL is shown by its scheme only: it may hold a password
        return url.split(":", 1)[0] + ":..."


def db_reason(exc: BaseException) -> str:
    """One line; SQLAlchemy's own text would repeat the SQL and its parameters."""
    from posgw.drivers.database_checks import database_reason

    return database_reason(exc)


def database_failed(what: str, url: str, exc: BaseException) -> NoReturn:
    fail(what, f"database {shown_url(url)}: {db_reason(exc)}")


def center_store(config: CenterConfig, what: str, *, create: bool = False) -> CenterStore:
    """The center database; without `create`, as it is (queries never create it)."""
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.db import CenterStore

    try:
        return CenterStore(config.database, create=create)
    except (SQLAlchemyError, OSError) as exc:
        database_failed(what, config.database, exc)


# --- tables -------------------------------------------------------------------


def printable(text: str) -> str:
    """Text from an untrusted sender (an MQTT topic, a reason quoting one),
    made safe for a terminal: control characters (ESC sequences that
    recolour, move the cursor or retitle the window) are shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def plain_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
                title: str | None = None, right: Iterable[int] = (),
                header: bool = True) -> str:
    """Fixed-width columns, two spaces apart, no colours, no rich import:
    for big tables (rich's layout costs over a second per 1,000 rows) and
    for commands that must answer fast. Columns in `right` align right."""
    right = set(right)
    lines = [*([list(headers)] if header else []), *(list(row) for row in rows)]
    if not lines:
        return title or ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]

    def render(cells: list[str]) -> str:
        return "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
                         ).rstrip()

    body = [render(line) for line in lines]
    return "\n".join(([title] if title else []) + body)
