"""Batch inserts handed straight to the DB-API cursor.

SQLAlchemy's `Connection.execute` spends about a quarter of a millisecond
on a statement before the driver sees it (cache key, compiled-statement
lookup, execution context, result setup): twice per group commit, and at
500 tx/s a batch holds one or two requests. Here each INSERT is compiled
once per table and column set and each column's bind processor (aware UTC
to naive, JSON to text, ...) looked up once, so a batch is one
`cursor.executemany` per table with the values SQLAlchemy would have sent.
The transaction stays SQLAlchemy's: the cursor is the connection's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.schema import ScalarElementColumnDefault

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # in the order of the statement's parameters
    processors: tuple[_Processor, ...]
    positional: bool
    defaults: dict[str, Any]  # columns the rows leave out: their scalar defaults


class BulkInserter:
    """`inserter.insert(conn, table, rows)`: rows are dicts of column values."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._plans: dict[tuple[Table, tuple[str, ...]], _Plan] = {}

    def insert(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert `rows` in the connection's transaction; a unique-key clash
        raises SQLAlchemy's IntegrityError, as `conn.execute` would."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            by_columns.setdefault(tuple(row), []).append(row)
        cursor = conn.connection.cursor()
        try:
            for names, group in by_columns.items():
                plan = self._plan(table, names)
                try:
                    cursor.executemany(plan.sql, _parameters(plan, group))
                except self._dialect.loaded_dbapi.IntegrityError as exc:
                    raise IntegrityError(plan.sql, None, exc) from exc
        finally:
            cursor.close()

    def _plan(self, table: Table, names: tuple[str, ...]) -> _Plan:
        plan = self._plans.get((table, names))
        if plan is None:
            # for_executemany: no RETURNING of the new id (PostgreSQL adds one).
            compiled = insert(table).values({name: None for name in names}).compile(
                dialect=self._dialect, for_executemany=True)
            order = tuple(compiled.positiontup or compiled.params)
            plan = self._plans[(table, names)] = _Plan(
                compiled.string, order,
                tuple(table.c[name].type.dialect_impl(self._dialect)
                      .bind_processor(self._dialect) for name in order),
                compiled.positional,
                {name: _scalar_default(table, name) for name in order if name not in names})
        return plan


def _scalar_default(table: Table, name: str) -> Any:
    default = table.c[name].default
    if not isinstance(default, ScalarElementColumnDefault):
        raise TypeError(f"{table.name}.{name} has no scalar default: give it a value")
    return default.arg


def _parameters(plan: _Plan, rows: list[dict[str, Any]]) -> list[Any]:
    pairs = tuple(zip(plan.names, plan.processors, strict=True))
    if plan.defaults:
        rows = [{**plan.defaults, **row} for row in rows]
    if plan.positional:
        return [tuple(row[name] if process is None else process(row[name])
                      for name, process in pairs) for row in rows]
    return [{name: row[name] if process is None else process(row[name])
             for name, process in pairs} for row in rows]
