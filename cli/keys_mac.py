"""`posgw keys mac generate | rotate | show`: terminal MAC keys, never printed.

The file and its rules (0600, refused when others may read it, atomic
replace) belong to `gateway.security.mac_keys`; this module parses options
and reports. A key is named by its key id and its check value (KCV: the
first 6 hex digits of the key encrypting, or for AES CMACing, a zero block),
which the terminal's key-loading record shows too.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from posgw.cli.common import fail
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.gateway.security.keys import KeyFileError
from posgw.gateway.security.mac_keys import (
    DEFAULT_GRACE_S,
    MacKeyError,
    TerminalMacKeys,
    generate_mac_key,
    load_mac_keys,
    mac_key_path,
    rotate_mac_key,
)
from posgw.protocols.mac import MacAlgorithm

EXIT_NOT_FOUND = 1

_DIR_OPTION = click.option(
    "--dir", "directory", required=True, metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="The keys directory ([keys] dir in gateway.toml); the file is DIR/terminal-mac.toml.")
_TERMINAL_OPTION = click.option("--terminal", "terminal_id", required=True, metavar="ID",
                                help="The terminal id (its field 41, or its [[terminals]] id).")
_ALGORITHMS = click.Choice([a.value for a in MacAlgorithm])



@click.group("mac")
def mac() -> None:
    """Terminal MAC keys (ISO 9797-1 algorithm 3 or AES-CMAC), one per terminal,
    in DIR/terminal-mac.toml (0600). The daemon reads the file at start and
    notices changes within seconds. Keys are never printed: `show` gives each
    key's id and check value."""


@mac.command("generate")
@_DIR_OPTION
@_TERMINAL_OPTION
@click.option("--algorithm", required=True, type=_ALGORITHMS,
              help="iso9797-1-alg3 (retail MAC, 16-byte DES key) or aes-cmac (AES-128). "
                   "Must match the [mac] algorithm of the terminal's profile.")
def mac_generate(directory: Path, terminal_id: str, algorithm: str) -> None:
    """Give TERMINAL its first MAC key (key id 1). Refuses a terminal that has one:
    use rotate."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        entry = generate_mac_key(directory, terminal_id, MacAlgorithm(algorithm), _now())
    except (KeyFileError, MacKeyError) as exc:
        fail("keys mac generate", exc)
    except OSError as exc:
        fail("keys mac generate", f"{exc.filename or directory}: {exc.strerror}")
    click.echo(f"terminal {terminal_id}: {algorithm} key id {entry.current.key_id}, "
               f"check value {entry.current.check_value}")
    click.echo(f"written to {mac_key_path(directory).resolve()} (0600); load the same key "
               "into the terminal under your key-loading procedure")


@mac.command("rotate")
@_DIR_OPTION
@_TERMINAL_OPTION
@click.option("--grace-s", type=click.IntRange(min=0), default=DEFAULT_GRACE_S,
              show_default=True,
              help="How long the previous key still verifies, for a terminal that has not "
                   "loaded the new one yet (0: at once no more).")
@click.option("--algorithm", type=_ALGORITHMS, help="Change algorithm (default: keep it).")
def mac_rotate(directory: Path, terminal_id: str, grace_s: int, algorithm: str | None) -> None:
    """A new key for TERMINAL under the next key id; the old one stays valid for
    --grace-s seconds."""
    chosen = MacAlgorithm(algorithm) if algorithm else None
    try:
        entry = rotate_mac_key(directory, terminal_id, _now(), grace_s=grace_s,
                               algorithm=chosen)
    except (KeyFileError, MacKeyError) as exc:
        fail("keys mac rotate", exc)
    except OSError as exc:
        fail("keys mac rotate", f"{exc.filename or directory}: {exc.strerror}")
    click.echo(f"terminal {terminal_id}: {entry.current.algorithm} key id "
               f"{entry.current.key_id}, check value {entry.current.check_value}")
    if entry.previous is not None:
        click.echo(f"previous key id {entry.previous.key.key_id} verifies until "
                   f"{_iso(entry.previous.valid_until)}")


@mac.command("show")
@_DIR_OPTION
@click.option("--terminal", "terminal_id", metavar="ID", help="Only this terminal.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per terminal id.")
def mac_show(directory: Path, terminal_id: str | None, as_json: bool) -> None:
    """Each terminal's algorithm, key id and check value, and its previous key
    while it still verifies. Never prints a key. Exit 1 when --terminal has no key."""
    try:
        keys = load_mac_keys(directory)
    except KeyFileError as exc:
        fail("keys mac show", exc)
    if terminal_id is not None:
        if terminal_id not in keys:
            click.echo(f"posgw keys mac show: terminal {terminal_id} has no MAC key", err=True)
            sys.exit(EXIT_NOT_FOUND)
        keys = {terminal_id: keys[terminal_id]}
    now = _now()
    if as_json:
        click.echo(json.dumps({tid: _view(keys[tid], now) for tid in sorted(keys)}, indent=2))
        return
    click.echo(f"{mac_key_path(directory).resolve()}: {len(keys)} terminals")
    for line in _lines(keys, now):
        click.echo(line)


def _view(entry: TerminalMacKeys, now: datetime) -> dict[str, Any]:
    view: dict[str, Any] = {"algorithm": entry.current.algorithm.value,
                            "key_id": entry.current.key_id,
                            "check_value": entry.current.check_value,
                            "created_at": _iso(entry.created_at), "previous": None}
    previous = entry.previous
    if previous is not None and now < previous.valid_until:
        view["previous"] = {"key_id": previous.key.key_id,
                            "check_value": previous.key.check_value,
                            "valid_until": _iso(previous.valid_until)}
    return view


def _lines(keys: dict[str, TerminalMacKeys], now: datetime) -> list[str]:
    """One line per terminal; plain text, so a check value is never wrapped."""
    width = max((len(tid) for tid in keys), default=8)
    lines = []
    for tid in sorted(keys):
        view = _view(keys[tid], now)
        line = (f"{tid:<{width}}  {view['algorithm']:<14}  key id {view['key_id']:<3}  "
                f"check value {view['check_value']}  created {view['created_at']}")
        previous = view["previous"]
        if previous:
            line += (f"  previous key id {previous['key_id']} ({previous['check_value']}) "
                     f"until {previous['valid_until']}")
        lines.append(line)
    return lines


def _now() -> datetime:
    return SYSTEM_CLOCK.utc_now()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
