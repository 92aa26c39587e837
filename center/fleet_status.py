"""The latest status of every terminal and gateway, kept as statuses arrive.

Both writers (center/writer.py, center/pg_writer.py) call `store_statuses`
in the batch's transaction with the verified terminal-status.v1 and
gateway-status.v1 payloads of the batch. Statuses are retained messages,
published QoS 1: a redelivery or a retained copy may arrive after a newer
one, so the newest `occurred_at` (the gateway's clock) wins.

A terminal's row is one upsert. A decommissioned terminal stays
decommissioned, and its final statement is never dropped by a later status.

A gateway's death is its MQTT Last Will: signed by the gateway like every
status (the center verifies it), but built and signed when the gateway
*connects*, so its `occurred_at` is the start of the connection it ends,
older than that connection's births. Ordered by `occurred_at` alone, a Will
would never win. So a death ends the connection it names: it is applied
when its `occurred_at` is no earlier than the current connection's first
birth (`online_since`) less `WILL_SLACK` (the Will is built just before the
connect, which takes at most the connect timeout); the Will of an earlier
connection, arriving late, is older than that and ignored. A clean stop
publishes its "offline" with the time of stopping, which passes the same
test. `offline_at` is when the center received the death (its own clock):
when the broker noticed the connection was gone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from posgw.center.batch_sql import Statements
from posgw.center.case_state import time_text
from posgw.center.verify import BadPayload
from posgw.protocols.contract import GATEWAY_STATUS_SCHEMA, TERMINAL_STATUS_SCHEMA

#: A Will is signed before the connect it guards; connecting takes at most
#: the gateway's connect timeout (10 s by default): a minute covers it.
WILL_SLACK = timedelta(seconds=60)
STATUS_SCHEMAS = frozenset({TERMINAL_STATUS_SCHEMA, GATEWAY_STATUS_SCHEMA})

_TERMINAL_COLUMNS = ("branch_id", "terminal_id", "gateway_id", "state", "profile", "driver",
                     "statement", "occurred_at", "received_at")
_GATEWAY_COLUMNS = ("gateway_id", "branch_id", "state", "last_seq", "outbox", "occurred_at",
                    "online_since", "offline_at", "received_at")
_UPDATED = ", ".join(f"{name} = excluded.{name}" for name in
                     ("gateway_id", "profile", "driver", "occurred_at", "received_at"))
TERMINAL_UPSERT = (
    f"INSERT INTO center_terminal_status ({', '.join(_TERMINAL_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in _TERMINAL_COLUMNS)}) "
    f"ON CONFLICT (branch_id, terminal_id) DO UPDATE SET {_UPDATED}, "
    "state = CASE WHEN center_terminal_status.state = 'decommissioned' "
    "THEN 'decommissioned' ELSE excluded.state END, "
    "statement = coalesce(excluded.statement, center_terminal_status.statement) "
    "WHERE center_terminal_status.occurred_at < excluded.occurred_at")
GATEWAY_INSERT = (
    f"INSERT INTO center_gateway_status ({', '.join(_GATEWAY_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in _GATEWAY_COLUMNS)}) "
    "ON CONFLICT (gateway_id) DO NOTHING RETURNING gateway_id")
GATEWAY_SELECT = (f"SELECT {', '.join(_GATEWAY_COLUMNS)} FROM center_gateway_status "
                  "WHERE gateway_id = :gateway_id")
GATEWAY_UPDATE = ("UPDATE center_gateway_status SET "
                  + ", ".join(f"{name} = :{name}" for name in _GATEWAY_COLUMNS[1:])
                  + " WHERE gateway_id = :gateway_id")


#: A UTC time as fixed-width text, ordered as the times are (as the cases keep them).
stamp = time_text


def parse_stamp(text: str) -> datetime:
    """A stamp, or a payload's ISO 8601 time, as an aware datetime."""
    return datetime.fromisoformat(text.upper().replace("Z", "+00:00")).astimezone(UTC)


def check_status_time(payload: Mapping[str, Any]) -> None:
    """A status's `occurred_at` orders it, so it must be a real time (the
    schema's date-time pattern lets year 0000 through; the age checks of
    events do not apply: a retained status may be old)."""
    try:
        parse_stamp(str(payload["occurred_at"]))
    except (ValueError, OverflowError):
        raise BadPayload("occurred_at is not an ISO 8601 time") from None


def store_statuses(execute: Statements, payloads: Sequence[Mapping[str, Any]], now: datetime, *,
                   lock: bool = False) -> None:
    """Apply each status in order; `lock`: SELECT ... FOR UPDATE (PostgreSQL:
    centers sharing a subscription may take two births of one gateway)."""
    received = stamp(now)
    for payload in payloads:
        if payload.get("schema") == TERMINAL_STATUS_SCHEMA:
            execute(TERMINAL_UPSERT, terminal_row(payload, received))
        elif payload.get("schema") == GATEWAY_STATUS_SCHEMA:
            _store_gateway(execute, gateway_row(payload, received), lock)


def _store_gateway(execute: Statements, incoming: dict[str, Any], lock: bool) -> None:
    if execute(GATEWAY_INSERT, incoming):
        return  # its first status
    rows = execute(GATEWAY_SELECT + (" FOR UPDATE" if lock else ""), incoming)
    current = dict(zip(_GATEWAY_COLUMNS, rows[0], strict=True))
    merged = merged_gateway(current, incoming)
    if merged is not None:
        execute(GATEWAY_UPDATE, merged)


def terminal_row(payload: Mapping[str, Any], received: str) -> dict[str, Any]:
    statement = payload.get("statement")
    return {"branch_id": payload["branch_id"], "terminal_id": payload["terminal_id"],
            "gateway_id": payload["gateway_id"], "state": payload["state"],
            "profile": payload.get("profile"), "driver": payload.get("driver"),
            "statement": None if statement is None else json.dumps(statement, sort_keys=True),
            "occurred_at": stamp(parse_stamp(str(payload["occurred_at"]))),
            "received_at": received}


def gateway_row(payload: Mapping[str, Any], received: str) -> dict[str, Any]:
    occurred = stamp(parse_stamp(str(payload["occurred_at"])))
    outbox = payload.get("outbox")
    online = payload["state"] == "online"
    return {"gateway_id": payload["gateway_id"], "branch_id": payload["branch_id"],
            "state": payload["state"], "last_seq": int(payload["last_seq"]),
            "outbox": None if outbox is None else json.dumps(outbox, sort_keys=True),
            "occurred_at": occurred, "online_since": occurred,
            "offline_at": None if online else received, "received_at": received}


def merged_gateway(current: Mapping[str, Any], incoming: Mapping[str, Any]
                   ) -> dict[str, Any] | None:
    """The gateway's row after `incoming` (a row of gateway_row); None: unchanged."""
    if incoming["state"] == "online":
        if incoming["occurred_at"] <= current["occurred_at"]:
            return None  # a redelivered or retained older birth
        since = (current["online_since"] if current["state"] == "online"
                 else incoming["online_since"])
        return {**incoming, "online_since": since, "offline_at": None}
    if current["state"] != "online":
        return None  # already offline
    began = parse_stamp(str(current["online_since"]))
    if parse_stamp(str(incoming["occurred_at"])) < began - WILL_SLACK:
        return None  # the Will of an earlier connection
    return {**current, "state": "offline", "offline_at": incoming["received_at"],
            "received_at": incoming["received_at"],
            "occurred_at": max(str(current["occurred_at"]), str(incoming["occurred_at"])),
            "last_seq": max(int(current["last_seq"]), int(incoming["last_seq"]))}
