"""One way for the ingest's record keepers to run SQL in the batch's transaction.

The keepers of cases, replies and statuses (center/case_records.py,
center/fleet_status.py) write each statement once, with `:name`
parameters, and run it through a `Statements` the writer hands them: on
SQLite a SQLAlchemy connection (sqlite3 takes `:name` as it is), on
PostgreSQL a psycopg cursor (which takes `%(name)s`, so the names are
rewritten once per statement).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the SQLite writer need not load psycopg
    import psycopg
    from sqlalchemy.engine import Connection

#: `:name`, not a PostgreSQL cast (`::text`) nor part of a word.
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


class Statements(Protocol):
    """Runs one statement with `:name` parameters; the rows it returned."""

    def __call__(self, statement: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]: ...


def sqlite_statements(conn: Connection) -> Statements:
    """`Statements` on a SQLAlchemy connection to SQLite."""
    def run(statement: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        result = conn.exec_driver_sql(statement, dict(params))
        return [tuple(row) for row in result] if result.returns_rows else []
    return run


def psycopg_statements(cursor: psycopg.Cursor[Any]) -> Statements:
    """`Statements` on a psycopg cursor (PostgreSQL)."""
    def run(statement: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cursor.execute(psycopg_style(statement), params)
        return list(cursor.fetchall()) if cursor.description is not None else []
    return run


@lru_cache(maxsize=64)  # a handful of statements, each rewritten once
def psycopg_style(statement: str) -> str:
    """`:name` parameters as psycopg's `%(name)s`."""
    return _PARAMETER.sub(r"%(\1)s", statement)
