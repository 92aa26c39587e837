"""Commands from the center on `{prefix}/{branch}/cmd`, answered on `cmd/reply`.

- `ping`: answered `done`.
- `decommission` TERMINAL: the terminal starts draining (new sales refused
  58; its reversals, voids and refunds still pass); the daemon's heartbeat
  retires it once none of its events waits in the outbox.
- `release` / `return_to_card` CASE: the freeze case's held sale is
  re-cleared (`settled`) or returned to the card (`refund`); see cases.py.

Replies are outbox events like any other: signed, durable, exactly once at
the center. A command is trusted as the broker delivers it; restricting who
may publish on `cmd` is the broker's ACL (see SECURITY in README).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from drivers.clock import Clock
from gateway.cases import CaseService
from gateway.forward.events import COMMAND_REPLY_SCHEMA, envelope, new_event_id, outbox_row
from gateway.forward.topics import command_reply_topic
from gateway.pipeline import GatewayIdentity
from gateway.store import GroupCommitter
from gateway.terminals import TerminalRegistry

log = logging.getLogger(__name__)

COMMAND_SCHEMA = "command.v1"


class CommandHandler:
    def __init__(self, registry: TerminalRegistry, committer: GroupCommitter,
                 identity: GatewayIdentity, clock: Clock, cases: CaseService) -> None:
        self._registry = registry
        self._cases = cases
        self._committer = committer
        self._identity = identity
        self._clock = clock

    async def handle(self, raw: bytes) -> None:
        """Act on one command and queue its reply; bad input is logged, never raised."""
        try:
            command = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("command that is not JSON ignored (%d bytes)", len(raw))
            return
        if not isinstance(command, dict) or not isinstance(command.get("command_id"), str):
            log.warning("command without a command_id ignored")
            return
        outcome, detail = await self._act(command)
        log.info("command %s %s: %s (%s)", command["command_id"], command.get("command"),
                 outcome, detail)
        await self._committer.commit(None, self._reply(command["command_id"], outcome, detail))

    async def _act(self, command: dict[str, Any]) -> tuple[str, str]:
        if command.get("schema") != COMMAND_SCHEMA:
            return "rejected", f"schema must be {COMMAND_SCHEMA}"
        if command.get("branch_id") != self._identity.branch_id:
            return "rejected", f"this gateway serves branch {self._identity.branch_id}"
        action = command.get("command")
        if action == "ping":
            return "done", f"gateway {self._identity.gateway_id} is up"
        if action == "decommission":
            terminal_id = str(command.get("terminal_id") or "")
            if not self._registry.drain(terminal_id):
                return "not_found", f"no terminal {terminal_id!r} here"
            return "done", f"terminal {terminal_id} is draining: new sales are refused"
        if action in ("release", "return_to_card"):
            return await self._cases.resolve(str(command.get("case_id") or ""), action)
        return "unknown_command", f"unknown command {action!r}"

    def _reply(self, command_id: str, outcome: str, detail: str) -> Any:
        ident = self._identity
        payload = {**envelope(COMMAND_REPLY_SCHEMA, event_id=new_event_id(),
                              branch_id=ident.branch_id, gateway_id=ident.gateway_id,
                              occurred_at=self._clock.utc_now()),
                   "command_id": command_id, "outcome": outcome, "detail": detail}
        return outbox_row(payload, topic=command_reply_topic(ident.topic_prefix,
                                                             ident.branch_id),
                          clock=self._clock)
