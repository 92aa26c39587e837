"""What the center tells each gateway after a batch is committed (confirm.v1).

For every gateway that sent events in a batch: the event_ids now held
(inserted now, or held before: a redelivery is confirmed again, since the
gateway sent it again because it never heard) and the event_ids refused
with the reason, at most MAX_CONFIRMED_IDS to a message, signed with the
center's command key, on `{prefix}/{branch}/{gateway_id}/confirm`.

Only a payload whose signature verified is ever named: its gateway_id,
branch_id and event_id are then the gateway's own word. A payload with a bad
signature or of an unknown gateway is quarantined but never confirmed, or
anyone could make a gateway forget a real event by publishing junk under
its event_id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.center.command_key import sign_command
from posgw.center.config import is_identifier
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import MAX_CONFIRMED_IDS, confirm_topic, confirmation

#: confirm.v1's limits on the ids it carries.
MAX_BRANCH_ID = 32
MAX_EVENT_ID = 64


@dataclass(frozen=True, slots=True)
class Confirmation:
    topic: str
    payload: bytes  # signed confirm.v1, canonical JSON
    count: int  # event_ids it names


@dataclass(slots=True)
class ConfirmationBook:
    """Collects one batch's outcomes per gateway, in arrival order."""

    topic_prefix: str
    #: (branch_id, gateway_id) -> event_id -> None (stored) or the reason.
    _outcomes: dict[tuple[str, str], dict[str, str | None]] = field(default_factory=dict)

    def stored(self, payload: dict[str, Any]) -> None:
        self._note(payload, None)

    def quarantined(self, payload: dict[str, Any], reason: str) -> None:
        self._note(payload, reason)

    def signed(self, key: Ed25519PrivateKey, now: datetime) -> list[Confirmation]:
        messages = []
        for (branch_id, gateway_id), outcomes in self._outcomes.items():
            items = list(outcomes.items())
            for start in range(0, len(items), MAX_CONFIRMED_IDS):
                chunk = items[start:start + MAX_CONFIRMED_IDS]
                body = confirmation(
                    branch_id, gateway_id, confirm_id=uuid.uuid4().hex, issued_at=now,
                    stored=[event_id for event_id, reason in chunk if reason is None],
                    quarantined={event_id: reason for event_id, reason in chunk
                                 if reason is not None})
                messages.append(Confirmation(
                    confirm_topic(self.topic_prefix, branch_id, gateway_id),
                    canonical_json(sign_command(body, key)), len(chunk)))
        return messages

    def _note(self, payload: dict[str, Any], reason: str | None) -> None:
        """A payload without a usable address or event_id (a schema violation
        can be one) cannot be confirmed: the gateway retries it, and it is
        quarantined again, visibly, until someone looks."""
        branch_id, gateway_id = payload.get("branch_id"), payload.get("gateway_id")
        event_id = payload.get("event_id")
        if not (isinstance(branch_id, str) and is_identifier(branch_id)
                and len(branch_id) <= MAX_BRANCH_ID and isinstance(gateway_id, str)
                and is_identifier(gateway_id) and isinstance(event_id, str)
                and 0 < len(event_id) <= MAX_EVENT_ID):
            return
        outcomes = self._outcomes.setdefault((branch_id, gateway_id), {})
        if reason is None or event_id not in outcomes:
            outcomes[event_id] = reason  # stored wins over a refused copy of the same id
