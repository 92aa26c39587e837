"""Configurations that start cleanly, for tests that then break one thing.

Each is complete as a secure deployment needs it (the center's command key,
listeners with an allow list), so the only reason a start fails is the one
the test put there.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from posgw.center.command_key import generate_command_key
from posgw.sandbox.ports import free_port
from tests.store.pg import PG_ADMIN_DSN

Table = dict[str, Any]


def gateway_table(folder: Path) -> Table:
    """A gateway on `folder`: SQLite, keys created on first start, a broker port
    nobody listens on (the forwarder retries; start-up does not wait for it)."""
    command_pub = generate_command_key(folder / "hq")
    return {
        "gateway": {"branch_id": "B001", "gateway_id": "gw-b001-1",
                    "database": f"sqlite:///{folder / 'gateway.db'}"},
        "mqtt": {"host": "127.0.0.1", "port": free_port()},
        "keys": {"dir": str(folder / "keys"), "center_public_key": str(command_pub)},
    }


def center_table(folder: Path) -> Table:
    generate_command_key(folder / "hq")
    return {
        "center": {"database": f"sqlite:///{folder / 'center.db'}",
                   "command_key": str(folder / "hq" / "command.key")},
        "mqtt": {"host": "127.0.0.1", "port": free_port(), "topic_prefix": "startup/v1"},
    }


def listener(bind: str) -> Table:
    return {"bind": bind, "profile": "iso87-ascii", "allow": ["T0101"]}


def write_toml(path: Path, table: Table) -> Path:
    """Tables, arrays of tables, and values JSON writes as TOML reads them
    (strings, integers, arrays of strings)."""
    lines: list[str] = []
    for section, content in table.items():
        for item in content if isinstance(content, list) else [content]:
            lines.append(f"[[{section}]]" if isinstance(content, list) else f"[{section}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in item.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_refused(ran: subprocess.CompletedProcess[str], what: str, config: Path,
                   key: str, *reason: str, status: int = 2) -> str:
    """Exit `status` and one line on stderr, `posgw WHAT: FILE: KEY: REASON`,
    no traceback; each of `reason` in it. Returns the line."""
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert ran.returncode == status, ran.stderr
    assert "Traceback" not in ran.stderr
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith(f"posgw {what}: {config}: {key}: "), lines[0]
    for words in reason:
        assert words in lines[0], lines[0]
    return lines[0]


def require_postgres() -> str:
    """The server's address as the tests' URLs name it; skipped when it is down."""
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_ADMIN_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_DSN}: {exc}")
    return PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
