"""The ingest's writes of cases and command replies, in the batch's transaction.

Both writers call `record` with what they execute SQL through: SQLAlchemy's
connection on SQLite (which holds the database's one write lock from the
batch's first insert on), a psycopg cursor on PostgreSQL (where the case's
row is locked with FOR UPDATE, so two center processes folding the same
case's transitions at once take turns). Statements are written once, with
`:name` parameters (center/batch_sql.py runs them on either).

A transition is kept once per event_id (center_case_events); only a new
one is folded into the case (center/case_state.py), so a redelivery
changes nothing. Replies are kept once per event_id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from posgw.center.batch_sql import Statements
from posgw.center.case_state import CaseState, first_state, fold, normal_time
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import CASE_SCHEMA, COMMAND_REPLY_SCHEMA

log = logging.getLogger(__name__)
#: The columns' bounds: seq an INTEGER (as center_events'), amounts a BIGINT.
MAX_INTEGER = 2**31 - 1
MAX_AMOUNT = 2**63 - 1
#: What the ingest keeps besides events and reports.
RECORDED_SCHEMAS = frozenset({CASE_SCHEMA, COMMAND_REPLY_SCHEMA})
_STATE_COLUMNS = tuple(CaseState.__dataclass_fields__)
_NAMES = ", ".join(_STATE_COLUMNS)
_VALUES = ", ".join(f":{name}" for name in _STATE_COLUMNS)

TRANSITION = ("INSERT INTO center_case_events (event_id, case_id, gateway_id, seq, status, "
              "overdue, occurred_at, payload, received_at) VALUES (:event_id, :case_id, "
              ":gateway_id, :seq, :status, :overdue, :occurred_at, :payload, "
              ":received_at) ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
CASE_ROW = f"SELECT {_NAMES} FROM center_cases WHERE case_id = :case_id"
NEW_CASE = (f"INSERT INTO center_cases ({_NAMES}, received_at) VALUES ({_VALUES}, "
            ":received_at) ON CONFLICT (case_id) DO NOTHING RETURNING case_id")
UPDATE_CASE = ("UPDATE center_cases SET "
               + ", ".join(f"{name} = :{name}" for name in _STATE_COLUMNS if name != "case_id")
               + ", received_at = :received_at WHERE case_id = :case_id")
REPLY = ("INSERT INTO center_command_replies (event_id, command_id, branch_id, gateway_id, seq, "
         "outcome, detail, occurred_at, received_at) VALUES (:event_id, :command_id, "
         ":branch_id, :gateway_id, :seq, :outcome, :detail, :occurred_at, "
         ":received_at) ON CONFLICT (event_id) DO NOTHING")


def is_recorded(payload: Mapping[str, Any]) -> bool:
    return payload.get("schema") in RECORDED_SCHEMAS


def record(run: Statements, payloads: Sequence[Mapping[str, Any]], received_at: str, *,
           lock: str = "") -> None:
    """Keep the verified cases and replies among `payloads` (others are left
    to their own tables). `lock`: " FOR UPDATE" on PostgreSQL."""
    mine = [payload for payload in payloads if is_recorded(payload)]
    for payload in sorted(mine, key=lambda item: int(item["seq"])):
        problem = _unstorable(payload)
        if problem:
            # Signed by a trusted gateway, yet not what the tables hold: its
            # seq is still counted; the batch (and the ingest) goes on.
            log.warning("%s %s not kept: %s", payload["schema"], payload["event_id"], problem)
        elif payload["schema"] == COMMAND_REPLY_SCHEMA:
            run(REPLY, _reply_params(payload, received_at))
        elif payload["schema"] == CASE_SCHEMA:
            _transition(run, dict(payload), received_at, lock)


def _unstorable(payload: Mapping[str, Any]) -> str:
    """Why the tables cannot hold a schema-valid payload ("" when they can):
    the schema bounds every text, not the size of numbers or every date."""
    if not 0 <= int(payload["seq"]) <= MAX_INTEGER:
        return "seq out of range"
    amount = payload.get("amount_minor")
    if amount is not None and not 0 <= int(amount) <= MAX_AMOUNT:
        return "amount_minor out of range"
    for name in ("occurred_at", "first_response_due_at", "expires_at"):
        try:
            if payload.get(name) is not None:
                normal_time(str(payload[name]))
        except ValueError:
            return f"{name} is not a time"
    return ""


def _transition(run: Statements, payload: dict[str, Any], received_at: str, lock: str) -> None:
    params = {"event_id": payload["event_id"], "case_id": payload["case_id"],
              "gateway_id": payload["gateway_id"], "seq": int(payload["seq"]),
              "status": payload["status"], "overdue": bool(payload.get("overdue", False)),
              "occurred_at": normal_time(payload["occurred_at"]),
              "payload": canonical_json(payload).decode("utf-8"), "received_at": received_at}
    if not run(TRANSITION, params):
        return  # held already: a redelivery
    current = _current(run, payload["case_id"], lock)
    if current is None:
        fresh = first_state(payload)
        if run(NEW_CASE, {**fresh.columns(), "received_at": received_at}):
            return
        current = _current(run, payload["case_id"], lock)  # another process made it meanwhile
        assert current is not None
    folded = fold(current, payload)
    if folded != current:
        run(UPDATE_CASE, {**folded.columns(), "received_at": received_at})


def _current(run: Statements, case_id: str, lock: str) -> CaseState | None:
    rows = run(CASE_ROW + lock, {"case_id": case_id})
    return CaseState.from_columns(dict(zip(_STATE_COLUMNS, rows[0], strict=True))) if rows else None


def _reply_params(payload: Mapping[str, Any], received_at: str) -> dict[str, Any]:
    return {"event_id": payload["event_id"], "command_id": payload["command_id"],
            "branch_id": payload["branch_id"], "gateway_id": payload["gateway_id"],
            "seq": int(payload["seq"]), "outcome": payload["outcome"],
            "detail": str(payload.get("detail", ""))[:256],
            "occurred_at": normal_time(payload["occurred_at"]), "received_at": received_at}
