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

Every payload first passes the gate (gateway/security/command_gate.py):
bounded size, command.v1, the center's signature (unless the config obeys
unsigned commands, which every log line here then says), this branch, a
fresh `issued_at`. What the gate drops gets no reply and a throttled log
line; what it refuses is answered `rejected`. A command_id executed before
is answered with its first outcome and not acted on again (a replay of a
captured command, a redelivery), at most MAX_ANSWERS times.

Replies are outbox events like any other: signed, durable, exactly once at
the center.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from posgw.drivers.clock import Clock
from posgw.gateway.cases import CaseService
from posgw.gateway.forward.events import new_event_id, outbox_row
from posgw.gateway.identity import GatewayIdentity
from posgw.gateway.logsetup import ThrottledLog
from posgw.gateway.metrics import GatewayMetrics
from posgw.gateway.risk import RiskSettings
from posgw.gateway.security.command_gate import Accepted, CommandGate, Dropped
from posgw.gateway.store import ExecutedCommand, GroupCommitter, Store
from posgw.gateway.store.rows import TableRow, table_row
from posgw.gateway.terminals import TerminalRegistry
from posgw.protocols.contract import (
    CASE_ACTIONS,
    DECOMMISSION,
    DONE,
    MAX_REPLY_DETAIL,
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
#: A command_id is answered at most this often in one run (its first answer,
#: then repeats of it): a captured command replayed a thousand times must
#: not make a thousand outbox rows.
MAX_ANSWERS = 3
#: Answer counts kept for at most this many command_ids (then started afresh).
ANSWERS_KEPT = 10_000
#: Dropped payloads: at most one log line per reason this often.
DROPPED_LOG_EVERY_S = 10.0
#: Said in every command log line while unsigned commands are obeyed.
UNSIGNED_MARK = " [UNSIGNED: obeyed without the center's signature]"


class CommandHandler:
    def __init__(self, registry: TerminalRegistry, committer: GroupCommitter,
                 identity: GatewayIdentity, clock: Clock, cases: CaseService, *,
                 gate: CommandGate, store: Store, metrics: GatewayMetrics,
                 reload_risk: RiskReload | None = None, unsigned: bool = False) -> None:
        """`unsigned`: the gate obeys unsigned commands (`[commands]
        insecure_obey_unsigned`); every command log line says so."""
        self._registry = registry
        self._gate = gate
        self._store = store
        self._metrics = metrics
        self._reload_risk = reload_risk
        self._cases = cases
        self._committer = committer
        self._identity = identity
        self._clock = clock
        self._mark = UNSIGNED_MARK if unsigned else ""
        self._answers: dict[str, int] = {}
        self._dropped_log = ThrottledLog(log, DROPPED_LOG_EVERY_S, clock.monotonic)

    async def handle(self, raw: bytes) -> None:
        """Act on one command and queue its reply; bad input is logged, never raised."""
        checked = self._gate.check(raw, self._clock.utc_now())
        if isinstance(checked, Dropped):
            self._dropped(raw, checked)
            return
        command, command_id = checked.command, checked.command["command_id"]
        if checked.refusal is not None:
            log.warning("command %s %s%s refused: %s", command_id, command["command"],
                        self._mark, checked.refusal)
            await self._answer(command_id, REJECTED, checked.refusal)
            return
        earlier = await asyncio.to_thread(self._store.executed_command, command_id)
        if earlier is not None:
            log.warning("command %s %s%s repeated: answered %s again, not executed again",
                        command_id, command["command"], self._mark, earlier.outcome)
            await self._answer(command_id, earlier.outcome, "already executed at "
                               f"{earlier.executed_at.isoformat()}: {earlier.detail}")
            return
        outcome, detail = await self._act(command)
        log.info("command %s %s%s: %s (%s)", command_id, command["command"], self._mark,
                 outcome, detail)
        await self._answer(command_id, outcome, detail, self._executed(checked, outcome, detail))

    def _dropped(self, raw: bytes, dropped: Dropped) -> None:
        """Counted, and logged by length and hash: never the payload itself."""
        self._metrics.command_dropped(dropped.reason)
        digest = hashlib.sha256(raw).hexdigest()[:16]
        self._dropped_log.warning(dropped.reason, "command refused, not answered (%s): "
                                  "%d bytes, sha256 %s..., %s", dropped.reason, len(raw),
                                  digest, dropped.detail)

    async def _answer(self, command_id: str, outcome: str, detail: str,
                      executed: TableRow | None = None) -> None:
        answers = self._answers.get(command_id, 0)
        if answers >= MAX_ANSWERS:
            self._dropped_log.warning("answered", "command %s not answered again: answered "
                                      "%d times already", command_id, answers)
            return
        if len(self._answers) >= ANSWERS_KEPT:
            self._answers.clear()
        self._answers[command_id] = answers + 1
        self._metrics.command_answered(outcome)
        # Extra rows, not the request's outbox row: the outbox cap refuses new
        # sales, never the answer to a command. The memory of an executed
        # command is written with its answer.
        rows = [self._reply(command_id, outcome, detail)]
        if executed is not None:
            rows.append(executed)
        await self._committer.commit(None, None, *rows)

    def _executed(self, checked: Accepted, outcome: str, detail: str) -> TableRow:
        return table_row(ExecutedCommand, command_id=checked.command["command_id"],
                         command=checked.command["command"], issued_at=checked.issued_at,
                         executed_at=self._clock.utc_now(), outcome=outcome,
                         detail=detail[:MAX_REPLY_DETAIL])

    async def _act(self, command: dict[str, Any]) -> tuple[str, str]:
        """What the command does; command.v1 guarantees the arguments it names."""
        action = command["command"]
        if action == PING:
            return DONE, f"gateway {self._identity.gateway_id} is up"
        if action == DECOMMISSION:
            terminal_id = command["terminal_id"]
            if not self._registry.drain(terminal_id):
                return NOT_FOUND, f"no terminal {terminal_id!r} here"
            return DONE, f"terminal {terminal_id} is draining: new sales are refused"
        if action in CASE_ACTIONS:
            return await self._cases.resolve(command["case_id"], action)
        if action == SUBMIT_EVIDENCE:
            return await self._cases.submit_evidence(command["case_id"], command["evidence"])
        if action == RELOAD_RISK and self._reload_risk is not None:
            reloaded, detail = self._reload_risk()
            return (DONE if reloaded else REJECTED), detail
        return UNKNOWN_COMMAND, f"unknown command {action!r}"

    def _reply(self, command_id: str, outcome: str, detail: str) -> TableRow:
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
