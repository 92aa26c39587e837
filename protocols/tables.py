"""The one reader of typed values from parsed TOML tables.

Profiles (framing, transport, ISO 8583 fields) and the gateway config all
read their tables through `TableReader`, so every bad value is reported the
same way: a `SpecError` naming the source file, the full key path and the
reason ("gateway.toml: mqtt.port: must be 1..65535; got 0"). Each caller
names the error type it raises: profiles the ISO 8583 `SpecError`,
configuration files `ConfigError`. This module imports neither, so the
iso8583 package, whose spec parser reads tables, can load it without a loop.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, Protocol


class KeyedErrorType(Protocol):
    """An exception class built from (key, reason, source): SpecError, ConfigError."""

    def __call__(self, key: str, reason: str, source: str = "", /) -> Exception: ...


#: Default meaning "the key must be present".
REQUIRED: Any = object()


def parse_toml(text: str, source: str, *, error: KeyedErrorType) -> dict[str, Any]:
    """The TOML document `text` (read from `source`); a syntax error raises `error`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error("(toml)", str(exc), source) from None


def with_environment(table: Mapping[str, Any], environ: Mapping[str, str],
                     overrides: Mapping[str, tuple[str, str]], *,
                     keep_empty: bool) -> dict[str, Any]:
    """`table` with each `overrides` variable (VARIABLE -> (section, key)) set
    from `environ`, so secrets need not be written in the file. `keep_empty`:
    whether a variable set to "" overrides too. A section that is not a
    table is left as it is, for the parser to report."""
    merged = {key: dict(value) if isinstance(value, dict) else value
              for key, value in table.items()}
    for variable, (section, key) in overrides.items():
        value = environ.get(variable)
        if value is None or (not value and not keep_empty):
            continue
        section_table = merged.setdefault(section, {})
        if isinstance(section_table, dict):
            section_table[key] = value
    return merged


class TableReader:
    """Typed access to one table; remembers which keys were read."""

    def __init__(self, table: object, path: str, source: str = "", *,
                 error: KeyedErrorType) -> None:
        self.path = path
        self.source = source
        self.error = error
        if not isinstance(table, Mapping):
            raise error(path, "must be a table", source)
        self._table: Mapping[str, Any] = table
        self._known: set[str] = set()

    @property
    def raw_table(self) -> Mapping[str, Any]:
        """The table itself, for callers that parse its entries one by one."""
        return self._table

    def __contains__(self, key: str) -> bool:
        return key in self._table

    def choice(self, key: str, allowed: Iterable[Any], default: Any = REQUIRED) -> Any:
        """One of `allowed` (compared by value; booleans never pass for numbers)."""
        options = list(allowed)
        value = self._get(key, default)
        if isinstance(value, bool) or value not in options:
            listed = ", ".join(str(o) for o in options if o != "")
            got = "missing" if value is REQUIRED else f"got {value!r}"
            self.fail(key, f"must be one of {listed}; {got}")
        return value

    def flag(self, key: str, default: bool = REQUIRED) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false; got {_shown(value)}")
        return value

    def integer(self, key: str, default: int = REQUIRED, low: int | None = None,
                high: int | None = None) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer; got {_shown(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"at least {low}"
            self.fail(key, f"must be {bounds}; got {value}")
        return value

    def text(self, key: str, default: str | None = REQUIRED) -> str | None:
        value = self._get(key, default)
        if value is not None and not isinstance(value, str):
            self.fail(key, f"must be a string; got {_shown(value)}")
        return value

    def sub(self, key: str) -> TableReader:
        """A reader for the sub-table `key` (an empty one when absent)."""
        return TableReader(self._get(key, {}), self.key_path(key), self.source,
                           error=self.error)

    def array(self, key: str) -> list[Any]:
        value = self._get(key, [])
        if not isinstance(value, list):
            self.fail(key, f"must be an array; got {_shown(value)}")
        return value

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as parsed, for callers that validate it themselves."""
        return self._get(key, default)

    def forbid(self, keys: Iterable[str], reason: str) -> None:
        for key in keys:
            if key in self._table:
                self.fail(key, reason)

    def reject_unknown(self, also_known: Iterable[str] = ()) -> None:
        known = self._known | set(also_known)
        for key in self._table:
            if key not in known:
                self.fail(str(key), f"unknown key; known keys: {', '.join(sorted(known))}")

    def key_path(self, key: str) -> str:
        """The full dotted name of `key` ("iso8583.fields.2.max")."""
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, reason: str) -> NoReturn:
        raise self.error(self.key_path(key), reason, self.source)

    def _get(self, key: str, default: Any) -> Any:
        self._known.add(key)
        value = self._table.get(key, default)
        if value is REQUIRED:
            self.fail(key, "required")
        return value


def _shown(value: object) -> str:
    return "nothing" if value is REQUIRED else repr(value)
