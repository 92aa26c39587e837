"""The center's confirm.v1 messages, read and checked before they change anything.

A confirmation makes the gateway forget events, so it is believed only when
the center's command key signed it (`[keys] center_public_key`; the same
verification as commands, gateway/security/command_auth.py) and it names
this gateway's schema, branch and gateway id. Anything else is refused with
the reason, and the outbox is left as it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from posgw.gateway.security.command_auth import CommandAuthenticator
from posgw.protocols.contract import CONFIRM_SCHEMA


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What the center holds now: stored event_ids, and quarantined ones with why."""

    confirm_id: str
    stored: tuple[str, ...] = ()
    quarantined: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


class ConfirmationReader:
    def __init__(self, authenticator: CommandAuthenticator, *, branch_id: str,
                 gateway_id: str) -> None:
        self._authenticator = authenticator
        self._branch_id = branch_id
        self._gateway_id = gateway_id

    def read(self, raw: bytes) -> Confirmation | Refused:
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return Refused("not JSON")
        if not isinstance(document, dict):
            return Refused("not a JSON object")
        refusal = self._authenticator.refusal(document)
        if refusal is not None:
            return Refused(refusal)
        return self._checked(document)

    def _checked(self, document: dict[str, Any]) -> Confirmation | Refused:
        if document.get("schema") != CONFIRM_SCHEMA:
            return Refused(f"schema {document.get('schema')!r} is not {CONFIRM_SCHEMA}")
        if (document.get("branch_id"), document.get("gateway_id")) != (self._branch_id,
                                                                        self._gateway_id):
            return Refused(f"for {document.get('branch_id')}/{document.get('gateway_id')}, "
                           f"not this gateway")
        stored = document.get("stored", [])
        quarantined = document.get("quarantined", [])
        if not isinstance(stored, list) or not all(isinstance(e, str) for e in stored):
            return Refused("stored is not a list of event_ids")
        reasons: dict[str, str] = {}
        for entry in quarantined if isinstance(quarantined, list) else [None]:
            if not (isinstance(entry, dict) and isinstance(entry.get("event_id"), str)):
                return Refused("quarantined is not a list of {event_id, reason}")
            reasons[entry["event_id"]] = str(entry.get("reason", ""))
        return Confirmation(str(document.get("confirm_id", "")), tuple(stored), reasons)
