"""The center's database, opened at start with its problems as ConfigErrors
naming `center.database`: a SQLite folder that is missing or not writable, a
PostgreSQL role or database that does not exist. `posgw center` then says
so in one line and exits 2, like a mistake in the file itself (1 for a
server that is only not reachable now: drivers/database_checks.py).
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.drivers.database_checks import database_folder_problem, database_refusal
from posgw.protocols.config_error import ConfigError

DATABASE_KEY = "center.database"


def open_center_store(config: CenterConfig) -> CenterStore:
    """The center's store, tables made (blocking)."""
    problem = database_folder_problem(config.database)
    if problem is not None:
        raise ConfigError(DATABASE_KEY, problem, config.source)
    try:
        return CenterStore(config.database)
    except (SQLAlchemyError, OSError) as exc:
        raise database_refusal(DATABASE_KEY, exc, config.source) from None
