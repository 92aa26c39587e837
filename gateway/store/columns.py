"""Column types shared by the gateway tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Table, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL.

    SQLite has no time zones and hands back naive values; storing naive UTC
    and re-attaching UTC on the way out keeps one behaviour everywhere.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC time (Clock.utc_now())")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The `Table` of a `table=True` model, typed: SQLModel's stubs do not
    declare the `__table__` its metaclass sets."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


#: JSON documents (payloads, evidence): JSON on SQLite, JSON on PostgreSQL.
JsonDocument = JSON
