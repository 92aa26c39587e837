"""The cases desk's own tables: the commands the console sent, and the
evidence files uploaded to it.

Evidence is kept in the database, not in a directory: the console holds no
state of its own beyond the database (several processes may serve it
behind a load balancer, with no shared disk), and a file goes into the
center's backups with the case it belongs to. Each file is bounded
(`[cases] max_evidence_bytes`) and so is their number per case
(`max_evidence_files`); a file is stored once, by its SHA-256.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, LargeBinary
from sqlmodel import Field, SQLModel


class ConsoleCommand(SQLModel, table=True):
    """A signed command the console published for a case; its reply is in
    center_command_replies under the same command_id."""

    __tablename__ = "center_console_commands"

    id: int | None = Field(default=None, primary_key=True)
    command_id: str = Field(unique=True, max_length=64)
    case_id: str = Field(max_length=64, index=True)
    branch_id: str = Field(max_length=32)
    action: str = Field(max_length=24)  # release, return_to_card, expire, submit_evidence
    by: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    #: submit_evidence: the file's hash (center_evidence_files).
    evidence_sha256: str | None = Field(default=None, max_length=64)


class EvidenceFile(SQLModel, table=True):
    """An evidence file held at the center, named by its SHA-256."""

    __tablename__ = "center_evidence_files"

    sha256: str = Field(primary_key=True, max_length=64)
    case_id: str = Field(max_length=64, index=True)  # the case it was first uploaded for
    filename: str = Field(max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=128)
    size_bytes: int
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
