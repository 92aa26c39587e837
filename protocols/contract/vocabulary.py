"""The words of the wire contract: schema names, statuses, commands, outcomes.

Each schema name is the stem of its file in `schemas/` (`tx-event.v1` is
`schemas/tx-event.v1.json`), and each set below is the `enum` of that schema.
"""

from __future__ import annotations

TX_EVENT_SCHEMA = "tx-event.v1"
TERMINAL_STATUS_SCHEMA = "terminal-status.v1"
GATEWAY_STATUS_SCHEMA = "gateway-status.v1"
CASE_SCHEMA = "case.v1"
RECONCILIATION_SCHEMA = "reconciliation.v1"
COMMAND_SCHEMA = "command.v1"
COMMAND_REPLY_SCHEMA = "command-reply.v1"
CONFIRM_SCHEMA = "confirm.v1"
SCHEMA_NAMES = (TX_EVENT_SCHEMA, TERMINAL_STATUS_SCHEMA, GATEWAY_STATUS_SCHEMA, CASE_SCHEMA,
                RECONCILIATION_SCHEMA, COMMAND_SCHEMA, COMMAND_REPLY_SCHEMA, CONFIRM_SCHEMA)
#: confirm.v1: at most this many event_ids in one confirmation (a batch's
#: worth; a larger batch is confirmed in several messages).
MAX_CONFIRMED_IDS = 1000
#: command.v1: the most bytes a command may take on the wire. The largest
#: real one (submit_evidence with a 255-character filename, signed) is under
#: 1.5 KiB; anything past this is refused before it is parsed.
MAX_COMMAND_BYTES = 4096
#: confirm.v1 quarantine `reason` maxLength.
MAX_QUARANTINE_REASON = 200

#: A transaction event's `status` (tx-event.v1), in the order DESIGN.md lists them.
SETTLED = "settled"
FROZEN = "frozen"  # approved, funds held by a freeze case
REVERSED = "reversed"
VOIDED = "voided"
REFUND = "refund"  # also how a return to card is recorded
DECLINED = "declined"
TX_STATUSES = (SETTLED, FROZEN, REVERSED, VOIDED, REFUND, DECLINED)
#: A terminal's and a gateway's retained `state`. A terminal being
#: decommissioned is "draining" until everything it did reached the center.
TERMINAL_STATES = ("online", "offline", "draining", "decommissioned")
GATEWAY_STATES = ("online", "offline")
#: A freeze case's `status` (case.v1); open and evidence_submitted hold the funds.
CASE_OPEN = "open"
CASE_STATUSES = (CASE_OPEN, "evidence_submitted", "released", "returned", "expired")
#: A batch reconciliation's `outcome` (reconciliation.v1).
RECONCILIATION_OUTCOMES = ("matched", "mismatched")

#: The `command` of a command.v1 payload.
PING = "ping"
RELEASE = "release"
RETURN_TO_CARD = "return_to_card"
EXPIRE = "expire"
SUBMIT_EVIDENCE = "submit_evidence"
DECOMMISSION = "decommission"
RELOAD_RISK = "reload_risk"
#: Commands that resolve a freeze case (they carry its `case_id`).
CASE_ACTIONS = (RELEASE, RETURN_TO_CARD, EXPIRE)
COMMAND_ACTIONS = (PING, *CASE_ACTIONS, SUBMIT_EVIDENCE, DECOMMISSION, RELOAD_RISK)

#: The `outcome` of a command-reply.v1 payload.
DONE = "done"
REJECTED = "rejected"
UNKNOWN_COMMAND = "unknown_command"
NOT_FOUND = "not_found"
COMMAND_OUTCOMES = (DONE, REJECTED, UNKNOWN_COMMAND, NOT_FOUND)
#: command-reply.v1 `detail` maxLength.
MAX_REPLY_DETAIL = 256
