"""Commands from the center on `{prefix}/{branch}/cmd`, answered on `cmd/reply`.

- `ping`: answered `done`.
- `decommission` TERMINAL: the terminal starts draining (new sales refused
  58; its reversals, voids and refunds still pass); the daemon's heartbeat
  retires it once none of its events waits in the outbox.
- `release` / `return_to_card` / `expire` CASE: the freeze case's held sale
  is re-cleared (`settled`) or returned to the card (`refund`; `expire` ends
  the case as expired); see cases.py.
- `submit_evidence` CASE + `evidence` {sha256, size_bytes, filename,
  submitted_by, held_at}: an evidence file's metadata, never its bytes. From
  `posgw cases evidence` the file is already in this gateway's evidence
  store (`held_at` "gateway", checked); from the center it stays at head
  office (`held_at` "center").
- `reload_risk`: re-read the config file's `[risk]` rules, as SIGHUP does;
  the reply is the rules now in force, or the file's mistake (nothing
  changed).

Replies are outbox events like any other: signed, durable, exactly once at
the center. With `[keys] center_public_key` set, only signed commands are
obeyed (gateway/security/command_auth.py); without it a command is trusted
as the broker delivers it, and the broker's ACL on `cmd` is the only guard.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from posgw.drivers.clock import Clock
from posgw.gateway.cases import CaseService
from posgw.gateway.forward.events import new_event_id, outbox_row
from posgw.gateway.identity import GatewayIdentity
from posgw.gateway.risk import RiskSettings
from posgw.gateway.security.command_auth import CommandAuthenticator
from posgw.gateway.store import GroupCommitter
from posgw.gateway.terminals import TerminalRegistry
from posgw.protocols.contract import (
    CASE_ACTIONS,
    COMMAND_SCHEMA,
    DECOMMISSION,
    DONE,
    NOT_FOUND,
    PING,
    REJECTED,
    RELOAD_RISK,
    SUBMIT_EVIDENCE,
    UNKNOWN_COMMAND,
    command_reply,
    command_reply_topic,
)

log = logging.getLogger(__name__)

#: Reloads the risk rules: (reloaded, what happened), e.g. Gateway.reload_risk.
RiskReload = Callable[[], tuple[bool, str]]


class CommandHandler:
    def __init__(self, registry: TerminalRegistry, committer: GroupCommitter,
                 identity: GatewayIdentity, clock: Clock, cases: CaseService,
                 reload_risk: RiskReload | None = None,
                 authenticator: CommandAuthenticator | None = None) -> None:
        self._registry = registry
        self._authenticator = authenticator
        self._reload_risk = reload_risk
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
        # An extra row, not the request's outbox row: the outbox cap refuses
        # new sales, never the answer to a command.
        await self._committer.commit(None, None,
                                     self._reply(command["command_id"], outcome, detail))

    async def _act(self, command: dict[str, Any]) -> tuple[str, str]:
        refusal = self._authenticator.refusal(command) if self._authenticator else None
        if refusal is not None:
            log.warning("command %s refused: %s", command["command_id"], refusal)
            return REJECTED, refusal
        if command.get("schema") != COMMAND_SCHEMA:
            return REJECTED, f"schema must be {COMMAND_SCHEMA}"
        if command.get("branch_id") != self._identity.branch_id:
            return REJECTED, f"this gateway serves branch {self._identity.branch_id}"
        action = command.get("command")
        if action == PING:
            return DONE, f"gateway {self._identity.gateway_id} is up"
        if action == DECOMMISSION:
            terminal_id = str(command.get("terminal_id") or "")
            if not self._registry.drain(terminal_id):
                return NOT_FOUND, f"no terminal {terminal_id!r} here"
            return DONE, f"terminal {terminal_id} is draining: new sales are refused"
        if action in CASE_ACTIONS:
            return await self._cases.resolve(str(command.get("case_id") or ""), action)
        if action == SUBMIT_EVIDENCE:
            return await self._cases.submit_evidence(str(command.get("case_id") or ""),
                                                     command.get("evidence"))
        if action == RELOAD_RISK and self._reload_risk is not None:
            reloaded, detail = self._reload_risk()
            return (DONE if reloaded else REJECTED), detail
        return UNKNOWN_COMMAND, f"unknown command {action!r}"

    def _reply(self, command_id: str, outcome: str, detail: str) -> Any:
        ident = self._identity
        payload = command_reply(command_id, outcome, detail, event_id=new_event_id(),
                                branch_id=ident.branch_id, gateway_id=ident.gateway_id,
                                occurred_at=self._clock.utc_now())
        return outbox_row(payload, topic=command_reply_topic(ident.topic_prefix,
                                                             ident.branch_id),
                          clock=self._clock)


def describe_rules(settings: RiskSettings) -> str:
    """The rules in force, one short phrase each (a reload's reply)."""
    return ", ".join(
        f"{name} {rule.threshold}/{rule.window_s:.0f}s {rule.action}"
        if rule.enabled else f"{name} off" for name, rule in settings.rules.items())
