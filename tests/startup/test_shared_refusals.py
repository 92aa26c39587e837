"""What the gateway (`posgw run`) and the center (`posgw center`) both refuse
the same way: a database folder missing or not writable, a PostgreSQL role or
database that does not exist (exit 2), a server not up yet (exit 1, so
systemd tries again), a TLS file not copied. Each case runs once per part."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from posgw.sandbox.ports import free_port
from tests.posgw_script import run_posgw, run_posgw_unprivileged
from tests.startup.setups import (
    Table,
    assert_refused,
    center_table,
    gateway_table,
    require_postgres,
    write_toml,
)

TIMEOUT_S = 30


@dataclass(frozen=True)
class Part:
    section: str  # the config table holding `database`: "gateway" or "center"
    make_table: Callable[[Path], Table]
    command: tuple[str, ...]  # posgw's arguments before `-c CONFIG`
    what: str  # the line's prefix: `posgw run:` or `posgw center:`
    tls_what: str  # the prefix when TLS files are checked (the center: as its config is read)

    def refused(self, tmp_path: Path, table: Table, key: str, *reason: str,
                unprivileged: bool = False, what: str | None = None, status: int = 2) -> str:
        config = write_toml(tmp_path / f"{self.section}.toml", table)
        runner = run_posgw_unprivileged if unprivileged else run_posgw
        extra = ("--log-level", "error") if self.section == "gateway" else ()
        ran = runner(*self.command, "-c", str(config), *extra, timeout=TIMEOUT_S)
        return assert_refused(ran, what or self.what, config, key, *reason, status=status)


PARTS = [Part("gateway", gateway_table, ("run",), "run", "run"),
         Part("center", center_table, ("center",), "center", "center config")]


@pytest.fixture(params=PARTS, ids=[part.section for part in PARTS])
def part(request: pytest.FixtureRequest) -> Part:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def table(tmp_path: Path, part: Part) -> Table:
    return part.make_table(tmp_path)


def test_a_database_folder_that_is_missing_is_named(tmp_path: Path, part: Part,
                                                    table: Table) -> None:
    folder = tmp_path / "no-such-folder"
    table[part.section]["database"] = f"sqlite:///{folder / 'posgw.db'}"
    part.refused(tmp_path, table, f"{part.section}.database", str(folder), "does not exist")


def test_a_database_folder_it_cannot_write_is_named(tmp_path: Path, part: Part,
                                                    table: Table) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir(mode=0o500)
    table[part.section]["database"] = f"sqlite:///{folder / 'posgw.db'}"
    part.refused(tmp_path, table, f"{part.section}.database", str(folder), "not writable",
                 unprivileged=True)


@pytest.mark.parametrize(("user", "database", "missing"), [
    ("posgw_no_such_role", "test", 'role "posgw_no_such_role" does not exist'),
    ("postgres", "posgw_no_such_db", 'database "posgw_no_such_db" does not exist'),
])
def test_a_postgresql_role_or_database_that_does_not_exist_is_named(
        tmp_path: Path, part: Part, table: Table, user: str, database: str,
        missing: str) -> None:
    server = require_postgres()
    table[part.section]["database"] = f"postgresql+psycopg://{user}@{server}/{database}"
    part.refused(tmp_path, table, f"{part.section}.database", missing)


def test_a_postgresql_server_not_up_yet_exits_1_so_systemd_tries_again(
        tmp_path: Path, part: Part, table: Table) -> None:
    table[part.section]["database"] = (
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    part.refused(tmp_path, table, f"{part.section}.database", "Connection refused", status=1)


@pytest.mark.parametrize("missing", ["tls_ca", "tls_cert", "tls_key"])
def test_a_missing_tls_file_is_named(tmp_path: Path, part: Part, table: Table,
                                     missing: str) -> None:
    for key in ("tls_ca", "tls_cert", "tls_key"):
        path = tmp_path / f"{key}.pem"
        if key != missing:
            path.write_text("-----BEGIN PLACEHOLDER-----\n")
        table["mqtt"][key] = str(path)
    part.refused(tmp_path, table, f"mqtt.{missing}", f"{missing}.pem", "no such file",
                 what=part.tls_what)
