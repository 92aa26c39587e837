"""A case's command from the console: signed with the center's command key,
published to the branch, recorded (center_console_commands) so the case
page can show the branch's reply when the ingest stores it.

Never unsigned: without `[center] command_key`, or with one that cannot be
read, nothing is sent and the page says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import anyio.from_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from posgw.center.case_models import CenterCase, CommandReply
from posgw.center.case_queries import replies_to
from posgw.center.command_key import CommandKeyError, load_command_key, sign_command
from posgw.center.commands import command_payload, send_command
from posgw.center.config import CenterConfig
from posgw.center.web.case_models import ConsoleCommand
from posgw.center.web.console import Console
from posgw.drivers.mqtt import MqttConfig
from posgw.protocols.contract import EXPIRE, RELEASE, RETURN_TO_CARD

log = logging.getLogger(__name__)

#: The action routes' last path part -> the command they send.
ACTIONS = {"release": RELEASE, "return": RETURN_TO_CARD, "expire": EXPIRE}
#: A broker that does not answer within this is reported, not waited on.
PUBLISH_TIMEOUT_S = 10.0
_REPLY_POLL_S = 0.2
NO_KEY = "No command key is configured ([center] command_key): nothing was sent."
BAD_KEY = "The center's command key cannot be used (see the console's log): nothing was sent."
NO_BROKER = "The broker could not be reached: nothing was sent. Try again."


class NotSent(Exception):
    """The command was not published; the message (a msgid) says why."""


@dataclass(frozen=True, slots=True)
class Sent:
    command_id: str
    reply: CommandReply | None  # stored by the ingest within the wait, else None


def send_for_case(console: Console, found: CenterCase, command: str, by: str,
                  **fields: Any) -> Sent:
    """Sign, publish, record; then wait up to `[cases] reply_wait_s` for the
    branch's reply to be stored. Runs in a worker thread of the app's loop."""
    key = _command_key(console.config)
    payload = sign_command(command_payload(found.branch_id, command, case_id=found.case_id,
                                           **fields), key)
    try:
        anyio.from_thread.run(_publish, console.config.mqtt, payload)
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        log.warning("case %s: %s not published: %s", found.case_id, command, exc)
        raise NotSent(NO_BROKER) from None
    evidence = fields.get("evidence")
    with Session(console.engine) as session:
        session.add(ConsoleCommand(
            command_id=payload["command_id"], case_id=found.case_id, branch_id=found.branch_id,
            action=command, by=by, at=datetime.now(UTC),
            evidence_sha256=evidence["sha256"] if isinstance(evidence, dict) else None))
        session.commit()
    reply = _stored_reply(console, payload["command_id"], console.config.cases.reply_wait_s)
    return Sent(payload["command_id"], reply)


def check_command_key(config: CenterConfig) -> None:
    """NotSent now, before anything is stored, when no command could be signed."""
    _command_key(config)


def _command_key(config: CenterConfig) -> Ed25519PrivateKey:
    if config.command_key_path is None:
        raise NotSent(NO_KEY)
    try:
        return load_command_key(config.command_key_path)
    except CommandKeyError as exc:
        log.error("command key: %s", exc)
        raise NotSent(BAD_KEY) from None


async def _publish(mqtt: MqttConfig, payload: dict[str, Any]) -> None:
    async with asyncio.timeout(PUBLISH_TIMEOUT_S):
        await send_command(mqtt, payload)


def _stored_reply(console: Console, command_id: str, wait_s: float) -> CommandReply | None:
    """Polls the replies table with a deadline: the ingest, not this
    process, receives and verifies the reply."""
    deadline = time.monotonic() + wait_s
    while True:
        with Session(console.engine, expire_on_commit=False) as session:
            reply = replies_to(session, [command_id]).get(command_id)
        if reply is not None or time.monotonic() >= deadline:
            return reply
        time.sleep(_REPLY_POLL_S)  # the ingest is another process: nothing to await
