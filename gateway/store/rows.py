"""Rows for the group committer as plain column values.

Building a SQLModel table object costs ~0.3 ms (pydantic plus SQLAlchemy
instrumentation on every attribute); the hot path builds a `TableRow`
instead: the same columns and defaults, as a dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticUndefined
from sqlmodel import SQLModel

_Column = tuple[str, Any, Any]  # name, default, default factory
_columns_of: dict[type[SQLModel], tuple[_Column, ...]] = {}


@dataclass(frozen=True, slots=True)
class TableRow:
    model: type[SQLModel]
    values: dict[str, Any]


def table_row(model: type[SQLModel], **values: Any) -> TableRow:
    """Every column of `model`: the given value, else the model's default."""
    full: dict[str, Any] = {}
    for name, default, factory in _columns(model):
        if name in values:
            full[name] = values[name]
        elif factory is not None:
            full[name] = factory()
        elif default is not PydanticUndefined:
            full[name] = default
        else:
            raise TypeError(f"{model.__name__}.{name} is required")
    unknown = values.keys() - full.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    if full.get("id", 0) is None:
        del full["id"]  # the database assigns it
    return TableRow(model, full)


def _columns(model: type[SQLModel]) -> tuple[_Column, ...]:
    columns = _columns_of.get(model)
    if columns is None:
        columns = _columns_of[model] = tuple(
            (name, field.default, field.default_factory)
            for name, field in model.model_fields.items())
    return columns
