"""Commands from the center to a branch's gateway, and their replies.

A command is published QoS 1 on `{prefix}/{branch}/cmd` as
`schemas/command.v1.json` describes it; the gateway answers on
`{prefix}/{branch}/cmd/reply` with a signed `command-reply.v1` carrying the
same `command_id`. To never miss a fast reply, the reply topic is
subscribed before the command is published.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from posgw.center.validation import check_against_schema
from posgw.center.verify import BadPayload, SignatureVerifier
from posgw.drivers.mqtt import QOS_AT_LEAST_ONCE, MqttConfig, new_client
from posgw.protocols import contract
from posgw.protocols.canonical_json import canonical_json


@dataclass(frozen=True, slots=True)
class Action:
    """One command the CLI can send: its schema name and its one argument, if any."""

    command: str  # the `command` value of command.v1
    argument: str | None  # the payload key of its argument
    summary: str


#: CLI action name → what it sends. `return` is short for return_to_card.
ACTIONS: dict[str, Action] = {
    "ping": Action(contract.PING, None, "is the gateway there? (no argument)"),
    "release": Action(contract.RELEASE, "case_id",
                      "CASE_ID: settle the funds a freeze case holds"),
    "return": Action(contract.RETURN_TO_CARD, "case_id",
                     "CASE_ID: give the held funds back to the card (recorded as a refund)"),
    "decommission": Action(contract.DECOMMISSION, "terminal_id",
                           "TERMINAL_ID: retire the terminal for good: it drains first (new "
                           "sales refused, its own reversals, voids and refunds still pass), "
                           "then once everything it did has reached the center every request "
                           "is refused"),
    "expire": Action(contract.EXPIRE, "case_id",
                     "CASE_ID: close an abandoned case now; its funds go back to the card"),
    "reload_risk": Action(contract.RELOAD_RISK, None,
                          "re-read the gateway's risk rules from its config file (no argument)"),
}


class CommandError(Exception):
    """The command line asked for something a command cannot carry."""


class ReplyError(Exception):
    """A reply came but cannot be trusted; says why (never its contents)."""


def build_command(branch_id: str, action_name: str, args: Sequence[str], *,
                  now: datetime | None = None) -> dict[str, Any]:
    """The command.v1 payload for `posgw center cmd BRANCH ACTION [ARGS]`."""
    action = ACTIONS.get(action_name)
    if action is None:
        raise CommandError(f"unknown action {action_name!r}; one of {', '.join(ACTIONS)}")
    expected = 0 if action.argument is None else 1
    if len(args) != expected:
        wanted = action.argument.upper() if action.argument else "no argument"
        raise CommandError(f"{action_name} takes {wanted}; got {len(args)} argument(s)")
    fields = {action.argument: args[0]} if action.argument is not None else {}
    return command_payload(branch_id, action.command, now=now, **fields)


def command_payload(branch_id: str, command: str, *, now: datetime | None = None,
                    **fields: Any) -> dict[str, Any]:
    """A command.v1 payload with a fresh command_id; `fields` as the schema names them
    (e.g. `case_id` and `evidence` for submit_evidence, which the gateway's own
    `posgw cases evidence` sends)."""
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    return contract.command(branch_id, command, command_id=str(uuid.uuid4()), issued_at=issued,
                            **fields)


async def send_command(mqtt: MqttConfig, command: dict[str, Any], *,
                       wait_reply_s: float | None = None,
                       verifier: SignatureVerifier | None = None) -> dict[str, Any] | None:
    """Publish `command` (returns once the broker has PUBACKed it) and, with
    `wait_reply_s`, the verified reply with its command_id (None: none came)."""
    branch = command["branch_id"]
    # Never the ingest's client id: a clean start under it would end the
    # running center's connection and discard its session. (A broker with
    # use_username_as_clientid does that for the same user name: give `cmd`
    # a user of its own, docs/center.md.)
    client = new_client(replace(mqtt, client_id=None),
                        client_id=f"posgw-center-cmd-{uuid.uuid4().hex[:12]}")
    async with client:
        if wait_reply_s is not None:
            await client.subscribe(contract.command_reply_topic(mqtt.topic_prefix, branch),
                                   qos=QOS_AT_LEAST_ONCE)
        await client.publish(contract.command_topic(mqtt.topic_prefix, branch),
                             canonical_json(command), qos=QOS_AT_LEAST_ONCE)
        if wait_reply_s is None:
            return None
        try:
            async with asyncio.timeout(wait_reply_s):
                return await _reply(client.messages, command, verifier)
        except TimeoutError:
            return None


async def _reply(messages: Any, command: dict[str, Any],
                 verifier: SignatureVerifier | None) -> dict[str, Any]:
    async for message in messages:
        try:
            reply = json.loads(message.payload)
        except (TypeError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not ours to judge: replies to other commands share the topic
        if not isinstance(reply, dict) or reply.get("command_id") != command["command_id"]:
            continue
        _check_reply(reply, command, verifier)
        return reply
    raise ReplyError("the connection ended before a reply came")


def _check_reply(reply: dict[str, Any], command: dict[str, Any],
                 verifier: SignatureVerifier | None) -> None:
    if verifier is not None:
        try:
            verifier.verify(reply)
        except BadPayload as exc:
            raise ReplyError(f"reply failed verification: {exc}") from None
    try:
        check_against_schema(reply, (contract.COMMAND_REPLY_SCHEMA,))
    except BadPayload as exc:
        raise ReplyError(f"reply is malformed: {exc}") from None
    if reply.get("branch_id") != command["branch_id"]:
        raise ReplyError("reply comes from another branch's gateway")
