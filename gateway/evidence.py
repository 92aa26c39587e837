"""Evidence files for freeze cases, stored by content.

A file is kept once, named by its SHA-256, in the gateway's evidence
directory (`[cases] evidence_dir`, by default `evidence/` beside a SQLite
database): submitting it again, for the same case or another, stores
nothing new, and a file that no longer hashes to its name has been altered.

`posgw cases evidence` puts the file here, then asks the daemon (over the
branch's `cmd` topic, like every other case action) to record it; the
daemon checks the stored bytes still hash to the name before it does. The
center sends metadata only: what head office holds, by hash and who.

Rule 5 (DESIGN.md) holds here too: a file, file name or submitter that
shows a card number (13-19 digits, spaces or dashes allowed between them,
passing the Luhn check) is refused. This is a guard for text evidence —
a letter, an export; the digits inside an image or a compressed PDF
cannot be seen, and the operator's instructions say to mask them first.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posgw.drivers.private_files import make_private_folder
from posgw.protocols.redact import card_number_at

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_FILENAME = 255
MAX_SUBMITTER = 64
HELD_AT = ("gateway", "center")


class EvidenceError(ValueError):
    """Evidence that cannot be stored or recorded; the message says why."""


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """What a `submit_evidence` command says about one file."""

    sha256: str
    size_bytes: int
    filename: str
    submitted_by: str
    held_at: str = "gateway"

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size_bytes": self.size_bytes,
                "filename": self.filename, "submitted_by": self.submitted_by,
                "held_at": self.held_at}

    @classmethod
    def from_command(cls, value: object) -> EvidenceItem:
        """Checked from a command's `evidence` object (schemas/command.v1.json)."""
        if not isinstance(value, dict):
            raise EvidenceError("evidence must be an object")
        sha256, size = value.get("sha256"), value.get("size_bytes")
        if not isinstance(sha256, str) or not SHA256_HEX.match(sha256):
            raise EvidenceError("evidence.sha256 must be 64 lower-case hex digits")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise EvidenceError("evidence.size_bytes must be a whole number of bytes")
        held_at = value.get("held_at", "center")
        if held_at not in HELD_AT:
            raise EvidenceError(f"evidence.held_at must be one of {', '.join(HELD_AT)}")
        return cls(sha256, size, checked_label(value.get("filename"), "filename", MAX_FILENAME),
                   checked_label(value.get("submitted_by"), "submitted_by", MAX_SUBMITTER),
                   held_at)


def checked_label(value: object, name: str, limit: int) -> str:
    """A file name (its last path part) or a person's name: present, bounded, no card number."""
    if not isinstance(value, str) or not value.strip():
        raise EvidenceError(f"evidence.{name} is required")
    text = Path(value.strip()).name if name == "filename" else value.strip()
    if len(text) > limit:
        raise EvidenceError(f"evidence.{name} is longer than {limit} characters")
    refuse_card_numbers(text.encode("utf-8"), f"evidence.{name}")
    return text


def refuse_card_numbers(data: bytes, what: str) -> None:
    """EvidenceError when `data` shows what looks like a card number (never echoed)."""
    offset = card_number_at(data)
    if offset is not None:
        raise EvidenceError(f"{what} shows what looks like a card number at byte "
                            f"{offset}: mask it (first 6, last 4) and submit again")


class EvidenceStore:
    """Files named by their SHA-256 in one directory."""

    def __init__(self, directory: str | Path, *, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        if not SHA256_HEX.match(sha256):
            raise EvidenceError("not a SHA-256")
        return self.directory / sha256

    def put(self, source: Path, *, submitted_by: str) -> EvidenceItem:
        """Store `source` (once); the metadata to send the daemon."""
        try:
            data = source.read_bytes() if source.stat().st_size <= self.max_bytes else None
        except OSError as exc:
            raise EvidenceError(f"{source}: {exc.strerror or 'cannot read'}") from None
        if data is None:
            raise EvidenceError(f"{source}: larger than {self.max_bytes} bytes "
                                "([cases] evidence_max_mb)")
        refuse_card_numbers(data, str(source.name))
        item = EvidenceItem(hashlib.sha256(data).hexdigest(), len(data),
                            checked_label(source.name, "filename", MAX_FILENAME),
                            checked_label(submitted_by, "submitted_by", MAX_SUBMITTER))
        target = self.path_for(item.sha256)
        if not self.holds(item):
            self._write(target, data)
        return item

    def holds(self, item: EvidenceItem) -> bool:
        """The file is here and still hashes to its name (so it is unaltered)."""
        path = self.path_for(item.sha256)
        try:
            if path.stat().st_size != item.size_bytes:
                return False
            return hashlib.sha256(path.read_bytes()).hexdigest() == item.sha256
        except FileNotFoundError:
            return False

    def _write(self, target: Path, data: bytes) -> None:
        """Write-then-rename, synced: a crash leaves the old state or the whole file."""
        # Letters and receipts name people: the daemon's user alone reads them.
        make_private_folder(self.directory)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o400)  # evidence is never edited in place
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
