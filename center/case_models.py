"""The freeze cases and command replies the center keeps (the ingest writes
them: center/case_records.py).

`center_cases` is each case's current state, folded from its transitions
(center/case_state.py); `center_case_events` every transition as it came,
once per event_id; `center_command_replies` what the branches answered to
commands. Times are text, as the gateways signed them but normalised to
one width (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), so they sort as they read on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

TIME_LENGTH = 40


class CenterCase(SQLModel, table=True):
    """A freeze case as the center last heard of it."""

    __tablename__ = "center_cases"
    __table_args__ = (Index("ix_center_cases_queue", "status", "first_response_due_at"),)

    case_id: str = Field(primary_key=True, max_length=64)
    branch_id: str = Field(max_length=32, index=True)
    gateway_id: str = Field(max_length=64)
    terminal_id: str = Field(max_length=16)
    rule: str = Field(max_length=64)
    status: str = Field(max_length=24)
    amount_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    currency: str | None = Field(default=None, max_length=3)
    pan_token: str | None = Field(default=None, max_length=64)
    opened_at: str = Field(max_length=TIME_LENGTH)  # the earliest transition's time
    first_response_due_at: str | None = Field(default=None, max_length=TIME_LENGTH)
    expires_at: str | None = Field(default=None, max_length=TIME_LENGTH)
    overdue: bool = False  # as the gateway last said it
    #: JSON list: the frozen sale's tx event, then the resolution's.
    tx_event_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    #: JSON list of the evidence files' metadata (case.v1 `evidence`), by sha256.
    evidence: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    #: The seq of the transition the state is at: an older one never moves it back.
    last_seq: int = -1
    updated_at: str = Field(max_length=TIME_LENGTH)  # that transition's occurred_at
    received_at: str = Field(max_length=TIME_LENGTH)  # when the center last changed the row


class CaseTransition(SQLModel, table=True):
    """One case.v1 payload, verified, as received: the case's history."""

    __tablename__ = "center_case_events"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    case_id: str = Field(max_length=64, index=True)
    gateway_id: str = Field(max_length=64)
    seq: int
    status: str = Field(max_length=24)
    overdue: bool = False
    occurred_at: str = Field(max_length=TIME_LENGTH)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the JSON as signed
    received_at: str = Field(max_length=TIME_LENGTH)


class CommandReply(SQLModel, table=True):
    """A branch's command-reply.v1: the outcome of one command."""

    __tablename__ = "center_command_replies"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    command_id: str = Field(max_length=64, index=True)
    branch_id: str = Field(max_length=32)
    gateway_id: str = Field(max_length=64)
    seq: int
    outcome: str = Field(max_length=24)
    detail: str = Field(default="", max_length=256)
    occurred_at: str = Field(max_length=TIME_LENGTH)
    received_at: str = Field(max_length=TIME_LENGTH)
