"""Terminal MAC keys: the key file, generation and rotation (`posgw keys mac`).

One file, `terminal-mac.toml` in the gateway's keys directory, mode 0600
(refused, like every private key file, when group or others may access
it). One table per terminal:

```toml
[terminals.T0000902]
algorithm = "iso9797-1-alg3"      # or "aes-cmac"
key_id = 2
key = "<32 hex digits>"           # never printed; `show` prints a check value
created_at = 2025-03-14T10:00:00Z

[terminals.T0000902.previous]     # after a rotation, until valid_until
algorithm = "iso9797-1-alg3"
key_id = 1
key = "<32 hex digits>"
valid_until = 2025-03-15T10:00:00Z
```

A rotation gives the terminal a new key id and keeps the old key as
`previous` for a grace period, so a terminal that has not loaded the new
key yet still verifies. The file is replaced atomically (write, fsync,
rename, as `keys.write_private` does for every key): the daemon may re-read
it at any moment.
"""

from __future__ import annotations

import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from posgw.gateway.security.keys import KeyFileError, read_private, write_private
from posgw.protocols.mac import MacAlgorithm, MacError, MacKey

MAC_KEY_FILE = "terminal-mac.toml"
#: A day: terminals take a new key at their next key download, and one that is
#: switched off overnight must still verify in the morning.
DEFAULT_GRACE_S = 86_400
#: K || K' for the retail MAC; AES-128 for CMAC (what AES terminal keys commonly are).
_KEY_BYTES = {MacAlgorithm.RETAIL: 16, MacAlgorithm.AES_CMAC: 16}
_HEADER = ("# posgw terminal MAC keys, managed by `posgw keys mac`. Secret: mode 0600;\n"
           "# never print, copy or commit this file.\n")


class MacKeyError(Exception):
    """A request `posgw keys mac` cannot carry out (unknown terminal, key already there)."""


@dataclass(frozen=True, slots=True)
class PreviousKey:
    key: MacKey
    valid_until: datetime


@dataclass(frozen=True, slots=True)
class TerminalMacKeys:
    terminal_id: str
    current: MacKey
    created_at: datetime
    previous: PreviousKey | None = None

    def candidates(self, now: datetime) -> tuple[MacKey, ...]:
        """The keys a request may be MACed under at `now`: current first."""
        if self.previous is not None and now < self.previous.valid_until:
            return (self.current, self.previous.key)
        return (self.current,)


def mac_key_path(directory: str | Path) -> Path:
    return Path(directory) / MAC_KEY_FILE


def load_mac_keys(directory: str | Path) -> dict[str, TerminalMacKeys]:
    """Every terminal's keys; {} when there is no file. Raises KeyFileError."""
    path = mac_key_path(directory)
    if not path.exists():
        return {}
    data = read_private(path)  # refuses a file group or others may access (LooseKeyFile)
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise KeyFileError(path, f"not TOML: {exc}") from None
    return _parse(path, table)


def save_mac_keys(directory: str | Path, keys: Mapping[str, TerminalMacKeys]) -> Path:
    """Replace the whole file atomically, 0600 from its first byte."""
    path = mac_key_path(directory)
    text = _HEADER + "".join(_terminal_toml(keys[tid]) for tid in sorted(keys))
    write_private(path, text.encode("utf-8"))
    return path


def generate_mac_key(directory: str | Path, terminal_id: str, algorithm: MacAlgorithm,
                     now: datetime) -> TerminalMacKeys:
    """A first key for `terminal_id` (key id 1); refuses a terminal that has one."""
    check_terminal_id(terminal_id)
    keys = load_mac_keys(directory)
    if terminal_id in keys:
        raise MacKeyError(f"terminal {terminal_id} already has MAC key id "
                          f"{keys[terminal_id].current.key_id}; rotate it instead")
    entry = TerminalMacKeys(terminal_id, new_key(algorithm, 1), _whole_second(now))
    save_mac_keys(directory, {**keys, terminal_id: entry})
    return entry


def rotate_mac_key(directory: str | Path, terminal_id: str, now: datetime, *,
                   grace_s: int = DEFAULT_GRACE_S,
                   algorithm: MacAlgorithm | None = None) -> TerminalMacKeys:
    """A new key with the next key id; the old one stays `previous` for `grace_s`."""
    keys = load_mac_keys(directory)
    old = keys.get(terminal_id)
    if old is None:
        raise MacKeyError(f"terminal {terminal_id} has no MAC key; generate one first")
    if grace_s < 0:
        raise MacKeyError("the grace period cannot be negative")
    chosen, now = algorithm or old.current.algorithm, _whole_second(now)
    entry = TerminalMacKeys(
        terminal_id, new_key(chosen, old.current.key_id + 1), now,
        PreviousKey(old.current, now + timedelta(seconds=grace_s)) if grace_s else None)
    save_mac_keys(directory, {**keys, terminal_id: entry})
    return entry


def new_key(algorithm: MacAlgorithm, key_id: int) -> MacKey:
    """A random key; DES halves get odd parity, as payment HSMs and terminals expect.

    Equal DES halves (MacKey refuses them) come out once in 2^56 draws."""
    raw = secrets.token_bytes(_KEY_BYTES[algorithm])
    if algorithm is MacAlgorithm.RETAIL:
        raw = bytes(_odd_parity(byte) for byte in raw)
    return MacKey(algorithm, raw, key_id)


def check_terminal_id(terminal_id: str) -> None:
    if not terminal_id or not all(c.isascii() and (c.isalnum() or c in "-_")
                                  for c in terminal_id):
        raise MacKeyError(f"terminal id must be letters, digits, '-' or '_'; got "
                          f"{terminal_id!r}")


# -- the file format ---------------------------------------------------------------


def _parse(path: Path, table: Mapping[str, Any]) -> dict[str, TerminalMacKeys]:
    terminals = table.get("terminals", {})
    if set(table) - {"terminals"} or not isinstance(terminals, Mapping):
        raise KeyFileError(path, "expected only [terminals.<id>] tables")
    return {str(tid): _terminal(path, str(tid), body) for tid, body in terminals.items()}


def _terminal(path: Path, terminal_id: str, body: object) -> TerminalMacKeys:
    where = f"terminals.{terminal_id}"
    try:
        check_terminal_id(terminal_id)
    except MacKeyError as exc:
        raise KeyFileError(path, f"{where}: {exc}") from None
    if not isinstance(body, Mapping):
        raise KeyFileError(path, f"{where}: must be a table")
    _only(path, where, body, {"algorithm", "key_id", "key", "created_at", "previous"})
    previous = None
    if "previous" in body:
        raw = body["previous"]
        if not isinstance(raw, Mapping):
            raise KeyFileError(path, f"{where}.previous: must be a table")
        _only(path, f"{where}.previous", raw, {"algorithm", "key_id", "key", "valid_until"})
        previous = PreviousKey(_key(path, f"{where}.previous", raw),
                               _moment(path, f"{where}.previous", raw, "valid_until"))
    return TerminalMacKeys(terminal_id, _key(path, where, body),
                           _moment(path, where, body, "created_at"), previous)


def _key(path: Path, where: str, body: Mapping[str, Any]) -> MacKey:
    algorithm, key_id, key = body.get("algorithm"), body.get("key_id"), body.get("key")
    if algorithm not in [a.value for a in MacAlgorithm]:
        raise KeyFileError(path, f"{where}.algorithm: must be iso9797-1-alg3 or aes-cmac")
    if isinstance(key_id, bool) or not isinstance(key_id, int) or key_id < 1:
        raise KeyFileError(path, f"{where}.key_id: must be a positive integer")
    try:
        return MacKey(MacAlgorithm(algorithm), bytes.fromhex(str(key)), key_id)
    except (ValueError, MacError) as exc:  # the reason never quotes the key
        reason = str(exc) if isinstance(exc, MacError) else "must be hex"
        raise KeyFileError(path, f"{where}.key: {reason}") from None


def _moment(path: Path, where: str, body: Mapping[str, Any], name: str) -> datetime:
    value = body.get(name)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise KeyFileError(path, f"{where}.{name}: must be a UTC date-time such as "
                                 "2025-03-14T10:00:00Z")
    return value.astimezone(UTC)


def _only(path: Path, where: str, body: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise KeyFileError(path, f"{where}.{unknown[0]}: unknown key")


def _terminal_toml(entry: TerminalMacKeys) -> str:
    lines = [f"\n[terminals.{entry.terminal_id}]", *_key_lines(entry.current),
             f"created_at = {_toml_time(entry.created_at)}"]
    if entry.previous is not None:
        lines += [f"\n[terminals.{entry.terminal_id}.previous]",
                  *_key_lines(entry.previous.key),
                  f"valid_until = {_toml_time(entry.previous.valid_until)}"]
    return "\n".join(lines) + "\n"


def _key_lines(key: MacKey) -> list[str]:
    return [f'algorithm = "{key.algorithm.value}"', f"key_id = {key.key_id}",
            f'key = "{key.key.hex().upper()}"']


def _whole_second(moment: datetime) -> datetime:
    """What the file keeps of a time (its TOML date-times are written to the second)."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _toml_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _odd_parity(byte: int) -> int:
    """DES keys carry odd parity in each byte's low bit (FIPS 46-3)."""
    high = byte & 0xFE
    return high | (bin(high).count("1") % 2 == 0)
