"""The checks a `cmd` payload passes before the gateway acts on it, cheapest first.

1. size: at most MAX_COMMAND_BYTES, counted before anything is parsed;
2. a JSON object;
3. `schemas/command.v1.json` (compiled once): a UUID command_id, an
   `issued_at`, every string bounded, no unknown member;
4. the signature of the center (or of this gateway's own key), unless the
   config obeys unsigned commands (`[commands] insecure_obey_unsigned`);
5. this gateway's branch;
6. fresh: `issued_at` no older than `[commands] max_age_s` and no further
   ahead than `max_ahead_s` (clocks drift; a command from the future is one
   made to outlive its window).

A payload failing 1-4 is `Dropped`: nobody who may command this gateway sent
it, so it gets nothing stored, signed or answered, only a counter and a
bounded reason (never its values: they are the sender's, of any size). One
failing 5-6 is `Accepted` with a `refusal`: the center did send it, and is
told `rejected` with the reason.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import fastjsonschema

from posgw.gateway.security.command_auth import CommandAuthenticator
from posgw.protocols.contract import COMMAND_SCHEMA, MAX_COMMAND_BYTES

#: Why a payload was dropped: the `reason` label of posgw_commands_dropped_total.
TOO_LARGE, NOT_JSON, SCHEMA, UNAUTHENTICATED = "too_large", "not_json", "schema", "unauthenticated"
DROP_REASONS = (TOO_LARGE, NOT_JSON, SCHEMA, UNAUTHENTICATED)


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: str  # one of DROP_REASONS
    detail: str  # bounded and free of the payload's values: safe to log


@dataclass(frozen=True, slots=True)
class Accepted:
    command: dict[str, Any]  # valid command.v1, authenticated (or unsigned by choice)
    issued_at: datetime
    refusal: str | None = None  # not to be acted on: answered `rejected`, with this


@dataclass(frozen=True, slots=True)
class CommandWindow:
    """How old (or how far ahead) `issued_at` may be."""

    max_age: timedelta
    max_ahead: timedelta

    def refusal(self, issued_at: datetime, now: datetime) -> str | None:
        if issued_at < now - self.max_age:
            return (f"stale: issued {issued_at.isoformat()}, more than "
                    f"{self.max_age.total_seconds():.0f} s ago")
        if issued_at > now + self.max_ahead:
            return (f"issued in the future ({issued_at.isoformat()}, more than "
                    f"{self.max_ahead.total_seconds():.0f} s ahead of this gateway's clock)")
        return None


@functools.cache
def _command_schema() -> Callable[[Any], Any]:
    text = (resources.files("posgw.schemas") / f"{COMMAND_SCHEMA}.json").read_text("utf-8")
    return fastjsonschema.compile(json.loads(text))


class CommandGate:
    """`check(raw, now)`: Dropped, or Accepted (with a refusal when not to act)."""

    def __init__(self, branch_id: str, window: CommandWindow,
                 authenticator: CommandAuthenticator | None) -> None:
        """`authenticator` None: unsigned commands are obeyed (the config said so)."""
        self._branch_id = branch_id
        self._window = window
        self._authenticator = authenticator
        _command_schema()  # compiled at start, not on the first command

    def check(self, raw: bytes, now: datetime) -> Dropped | Accepted:
        if len(raw) > MAX_COMMAND_BYTES:
            return Dropped(TOO_LARGE, f"too large: more than {MAX_COMMAND_BYTES} bytes")
        try:
            command = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return Dropped(NOT_JSON, "not JSON")
        if not isinstance(command, dict):
            return Dropped(NOT_JSON, "not a JSON object")
        try:
            _command_schema()(command)
        except fastjsonschema.JsonSchemaValueException as exc:
            # The path and the rule, never exc.message: it can quote member names.
            return Dropped(SCHEMA, f"{COMMAND_SCHEMA}: {exc.name} breaks {exc.rule}")
        issued_at = _moment(command["issued_at"])
        if issued_at is None:
            return Dropped(SCHEMA, f"{COMMAND_SCHEMA}: data.issued_at is no UTC date-time")
        if self._authenticator is not None:
            refusal = self._authenticator.refusal(command)
            if refusal is not None:
                return Dropped(UNAUTHENTICATED, refusal)
        if command["branch_id"] != self._branch_id:
            return Accepted(command, issued_at, f"this gateway serves branch {self._branch_id}")
        return Accepted(command, issued_at, self._window.refusal(issued_at, now))


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
