"""Fixtures every center test shares: a gateway's keys and a SQLite center store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posgw.center.db import CenterStore
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from tests.store.pg import scratch_database


@pytest.fixture
def keys(tmp_path: Path) -> GatewayKeys:
    """A fresh gateway key set (signing and token keys) in the test's folder."""
    return load_keys(generate_keys(tmp_path / "keys").parent)


@pytest.fixture
def sqlite_center(tmp_path: Path) -> Iterator[CenterStore]:
    store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CenterStore]:
    """A center store on each database the center supports (PostgreSQL: a
    scratch database, skipped without a server)."""
    if request.param == "sqlite":
        opened = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
        yield opened
        opened.close()
        return
    with scratch_database() as url:
        opened = CenterStore(url)
        yield opened
        opened.close()
