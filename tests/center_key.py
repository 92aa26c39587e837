"""The center's command key, for tests that parse a gateway config: a
gateway config without `[keys] center_public_key` is refused (unless it says
`[commands] insecure_obey_unsigned`), so every test table names one."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from posgw.center.command_key import generate_command_key

GATEWAY_EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "gateway.example.toml"


@functools.cache
def center_public_key() -> str:
    """A command.pub made once per test process (removed at its exit)."""
    folder = tempfile.mkdtemp(prefix="posgw-center-key-")
    atexit.register(shutil.rmtree, folder, True)
    return str(generate_command_key(folder))


def with_center_key(table: dict[str, Any]) -> dict[str, Any]:
    """`table` with `[keys] center_public_key` added."""
    return {**table, "keys": {**table.get("keys", {}), "center_public_key": center_public_key()}}


def gateway_example(folder: Path) -> Path:
    """deploy/gateway.example.toml copied into `folder`, its center key path
    pointing at a real key (the example names /etc/posgw/center-command.pub)."""
    copy = folder / "gateway.toml"
    copy.write_text(GATEWAY_EXAMPLE.read_text().replace("/etc/posgw/center-command.pub",
                                                        center_public_key()))
    return copy
