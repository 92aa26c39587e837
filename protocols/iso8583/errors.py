"""The codec's one exception hierarchy.

Whatever bytes arrive, decoding raises only `DecodeError`; whatever a caller
hands to the encoder, encoding raises only `EncodeError`; a malformed spec
raises `SpecError`. Messages never quote field contents: a field may hold a PAN.
"""

from __future__ import annotations


class Iso8583Error(Exception):
    """Base of every error the ISO 8583 codec raises."""


class DecodeError(Iso8583Error):
    """The peer sent bytes that do not follow the spec (their fault)."""

    def __init__(self, field: str, offset: int, reason: str) -> None:
        super().__init__(f"field {field} at offset {offset}: {reason}")
        self.field = field
        self.offset = offset
        self.reason = reason


class EncodeError(Iso8583Error):
    """A value handed to the encoder does not fit the spec (our fault)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field}: {reason}")
        self.field = field
        self.reason = reason


class SpecError(Iso8583Error):
    """A spec or profile is malformed; names the key at fault."""

    def __init__(self, key: str, reason: str, source: str = "") -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {reason}")
        self.key = key
        self.reason = reason
        self.source = source
