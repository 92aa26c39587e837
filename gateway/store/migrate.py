"""Schema migrations: bring a database made by an earlier posgw up to date.

Each step adds what one version added, in one transaction, then records
the new version. Only additive steps (new nullable columns): an older
database keeps every row, and a pending event of version 3 is a pending
event of version 4 (`published_at` None).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.types import String, TypeEngine

from posgw.gateway.store.columns import UtcDateTime
from posgw.gateway.store.models import SchemaVersion

log = logging.getLogger(__name__)

Column = tuple[str, str, TypeEngine[Any]]  # table, column, type

#: version -> the columns that take it to version + 1.
STEPS: Mapping[int, tuple[Column, ...]] = {
    3: (("outbox", "published_at", UtcDateTime()),
        ("outbox", "quarantine_reason", String(200)),
        ("gateway_runtime", "center_silent_since", UtcDateTime())),
}


def can_migrate(found: int, target: int) -> bool:
    return found < target and all(version in STEPS for version in range(found, target))


def migrate(engine: Engine, found: int, target: int, at: datetime) -> None:
    """Apply every step from `found` to `target` (check `can_migrate` first)."""
    for version in range(found, target):
        with engine.begin() as conn:
            for table, column, kind in STEPS[version]:
                ddl = kind.compile(dialect=engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
            conn.execute(update(SchemaVersion).where(SchemaVersion.id == 1)  # type: ignore[arg-type]
                         .values(version=version + 1, applied_at=at))
        log.warning("database schema migrated from version %d to %d", version, version + 1)
