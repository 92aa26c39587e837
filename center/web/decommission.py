"""Retiring a terminal from the console: the signed `decommission` command.

The command is signed with the center's command key (`[center]
command_key`, center/command_key.py), published QoS 1 on the branch's
command topic (center/commands.py), and the gateway's signed reply waited
for a few seconds. Without a command key nothing is sent: a gateway obeys
only signed commands. Each attempt is a row of center_decommissions (the
fleet shows the terminal draining from then on, until its gateway reports
it decommissioned) and of the audit log.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiomqtt
from sqlmodel import Session

from posgw.center.command_key import CommandKeyError, load_command_key, sign_command
from posgw.center.commands import ReplyError, command_payload, send_command
from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.center.registry import build_verifier
from posgw.center.web.models import DecommissionRequest
from posgw.protocols.contract import DECOMMISSION

#: How long the console waits for the gateway's reply: a connected gateway
#: answers within a second; one that is offline gets the command from the
#: broker when it connects again (its session is persistent).
REPLY_WAIT_S = 5.0
#: Connecting to the broker and publishing, at most.
SEND_TIMEOUT_S = 15.0
MAX_DETAIL = 256
#: A request's outcomes (msgids: the terminal's page translates them).
OUTCOMES = ("done", "refused", "sent", "failed")


class NoCommandKey(Exception):
    """The center has no usable command key: nothing was sent; says why."""


def decommission(config: CenterConfig, store: CenterStore, branch: str, terminal: str,
                 actor: str) -> DecommissionRequest:
    """Sign, send and record the command; the recorded request (its outcome:
    done, refused, sent when no reply came in time, failed)."""
    if config.command_key_path is None:
        raise NoCommandKey("no [center] command_key: a gateway obeys only signed commands")
    try:
        key = load_command_key(config.command_key_path)
    except CommandKeyError as exc:
        raise NoCommandKey(f"[center] command_key: {exc}") from None
    command = sign_command(command_payload(branch, DECOMMISSION, terminal_id=terminal), key)
    outcome, detail = _sent(config, store, command)
    request = DecommissionRequest(branch_id=branch, terminal_id=terminal,
                                  command_id=str(command["command_id"]), requested_by=actor,
                                  requested_at=datetime.now(UTC), outcome=outcome,
                                  detail=detail[:MAX_DETAIL])
    with Session(store.engine, expire_on_commit=False) as session:
        session.add(request)
        session.commit()
    return request


def _sent(config: CenterConfig, store: CenterStore, command: dict[str, object]
          ) -> tuple[str, str]:
    """(outcome, detail). Blocking: runs in the console's worker thread."""
    verifier = build_verifier(store, config.gateways)

    async def send() -> dict[str, object] | None:
        async with asyncio.timeout(SEND_TIMEOUT_S + REPLY_WAIT_S):
            return await send_command(config.mqtt, dict(command), wait_reply_s=REPLY_WAIT_S,
                                      verifier=verifier)

    try:
        reply = asyncio.run(send())
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        return "failed", f"the broker could not be reached: {type(exc).__name__}"
    except ReplyError as exc:
        return "sent", str(exc)
    if reply is None:
        return "sent", ""
    detail = str(reply.get("detail", ""))
    return ("done" if reply.get("outcome") == "done" else "refused"), detail
