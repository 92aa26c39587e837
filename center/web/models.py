"""The console's own tables, in the center database beside the events:
accounts, sessions, the audit trail and the decommissions it sent. Nothing else is kept anywhere, so
several console processes can serve behind one load balancer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from posgw.center.web.case_models import ConsoleCommand, EvidenceFile
from posgw.center.writer import table_of

#: Roles, weakest first: each may do what the ones before it may.
ROLES = ("viewer", "risk", "admin")


def role_allows(held: str, needed: str) -> bool:
    return held in ROLES and ROLES.index(held) >= ROLES.index(needed)


class ConsoleUser(SQLModel, table=True):
    """A console account. `password_hash` is Argon2id (argon2-cffi's encoded
    form, salt and parameters included)."""

    __tablename__ = "center_users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=256)
    #: "" follows the browser's Accept-Language; else en, vi or zh_Hans.
    language: str = Field(default="", max_length=16)
    disabled: bool = False
    #: Signed in with a one-time password (`users add --one-time`, `posgw demo
    #: --console`): every page but choosing a new one is closed until it is.
    must_change: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256
    is stored, so a copy of the database does not sign anyone in."""

    __tablename__ = "center_web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(unique=True, max_length=64)
    user_name: str = Field(max_length=64, index=True)
    #: The per-session CSRF token every POST must carry.
    csrf_token: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AuditEntry(SQLModel, table=True):
    """Who did what, on which object, when, and how it ended."""

    __tablename__ = "center_audit"
    __table_args__ = (Index("ix_center_audit_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=64)
    action: str = Field(max_length=32)
    object: str = Field(default="", max_length=128)
    outcome: str = Field(max_length=16)
    #: The client's address, for failed logins (a guessing source).
    client: str = Field(default="", max_length=64)




class DecommissionRequest(SQLModel, table=True):
    """A decommission the console sent: until the terminal's status says
    "decommissioned", the fleet shows it draining."""

    __tablename__ = "center_decommissions"
    __table_args__ = (Index("ix_center_decommissions_terminal", "branch_id", "terminal_id"),)

    id: int | None = Field(default=None, primary_key=True)
    branch_id: str = Field(max_length=32)
    terminal_id: str = Field(max_length=16)
    command_id: str = Field(max_length=64)
    requested_by: str = Field(max_length=64)
    requested_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    #: sent (no reply in time), done, refused, failed (with the gateway's or
    #: the broker's words in `detail`).
    outcome: str = Field(max_length=16)
    detail: str = Field(default="", max_length=256)


CONSOLE_TABLES = [table_of(model) for model in (ConsoleUser, ConsoleSession, AuditEntry,
                                                DecommissionRequest, ConsoleCommand,
                                                EvidenceFile)]


def create_console_tables(engine: Engine) -> None:
    """Made on first use by `posgw center users` or `posgw center web`
    (the ingest does not need them)."""
    SQLModel.metadata.create_all(engine, tables=CONSOLE_TABLES)
    with engine.begin() as conn:
        # Accounts made before one-time passwords get the column (create_all
        # adds tables, never columns); none of them has to change its password.
        columns = {column["name"] for column in inspect(conn).get_columns("center_users")}
        if "must_change" not in columns:
            conn.execute(text("ALTER TABLE center_users "
                              "ADD COLUMN must_change BOOLEAN NOT NULL DEFAULT FALSE"))
