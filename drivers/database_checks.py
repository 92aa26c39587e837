"""A database URL as the daemons check it at start: the folder a SQLite file
lives in, a driver's error in one line, and whether a restart could help.

A server that answered and refused (no such role or database, a wrong
password, no pg_hba.conf line) is the operator's to fix: a ConfigError,
exit 2, and systemd does not restart (RestartPreventExitStatus=2). A server
not there yet (refused connection, starting up, a timeout) may be there in
a moment: `DatabaseUnavailable`, the same one line but exit 1, so systemd
tries again after RestartSec.

Shared by the gateway and the center (gateway/startup.py,
center/startup.py) and the CLI; stdlib only, so the URL is read by its
`sqlite:///` prefix, as SQLAlchemy reads it (three slashes, then the path:
relative, or absolute with a fourth).
"""

from __future__ import annotations

from pathlib import Path

from posgw.drivers.private_files import folder_problem
from posgw.protocols.config_error import ConfigError

SQLITE_PREFIX = "sqlite:///"
#: What PostgreSQL (libpq) says when it refuses for good. Matched on the text:
#: psycopg gives connection failures no SQLSTATE.
_REFUSED_FOR_GOOD = ("does not exist", "authentication failed", "no pg_hba.conf entry",
                     "permission denied", "password", "invalid dsn", "invalid connection option")


class DatabaseUnavailable(ConfigError):
    """The database server is not reachable now; a later start may find it."""


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///PATH` URL; None for a server or an in-memory database."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url[len(SQLITE_PREFIX):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def database_folder_problem(url: str) -> str | None:
    """Why SQLite could not create or write the database of `url` (its folder
    missing, not a folder, not writable by this user); None otherwise."""
    path = sqlite_path(url)
    if path is None:
        return None
    problem = folder_problem(path.absolute().parent, write=True)
    if problem is None:
        return None
    return f"{problem}; SQLite keeps the database and its -wal and -shm files there"


def database_reason(exc: BaseException) -> str:
    """The driver's first line: SQLAlchemy's own text repeats the SQL and its
    parameters, and a URL shown whole may hold a password."""
    original = getattr(exc, "orig", None)
    cause = str(original if original is not None else exc).strip()
    return cause.splitlines()[0] if cause else type(exc).__name__


def database_refusal(key: str, exc: BaseException, source: str) -> ConfigError:
    """The error to stop the start with: `DatabaseUnavailable` when a
    restart could help, a plain ConfigError when the operator must act."""
    reason = database_reason(exc)
    transient = not _is_sqlite(exc) and not any(
        marker in reason.lower() for marker in _REFUSED_FOR_GOOD)
    return (DatabaseUnavailable if transient else ConfigError)(key, reason, source)


def _is_sqlite(exc: BaseException) -> bool:
    original = getattr(exc, "orig", None)
    return type(original if original is not None else exc).__module__.startswith("sqlite3")
