"""A center store on each database settlement runs on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posgw.center.db import CenterStore

# The same store on each database the center supports: SQLite, PostgreSQL.
from tests.center.conftest import store  # noqa: F401


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[CenterStore]:
    opened = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterStore]:
    """One SQLite store for a module's property tests (hypothesis runs a
    test many times; a function-scoped fixture would not be reset between)."""
    opened = CenterStore(f"sqlite:///{tmp_path_factory.mktemp('fees') / 'center.db'}")
    yield opened
    opened.close()
