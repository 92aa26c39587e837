"""Reading a settlement file with a size cap: the readers never take in
more than their cap (plus the one byte that shows it was exceeded)."""

from __future__ import annotations

from pathlib import Path


class FileTooLarge(Exception):
    """The file is over the reader's byte cap."""


def read_capped(source: str | Path | bytes, cap: int) -> bytes:
    """The file's bytes (or `source` itself), at most `cap` of them; past it,
    FileTooLarge, having read only `cap` + 1 bytes."""
    if isinstance(source, bytes):
        data = source
    else:
        with open(source, "rb") as file:
            data = file.read(cap + 1)
    if len(data) > cap:
        raise FileTooLarge(f"over the {cap} byte cap")
    return data
