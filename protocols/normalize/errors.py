"""The one error normalization raises."""

from __future__ import annotations

from posgw.protocols.iso8583.errors import Iso8583Error


class NormalizeError(Iso8583Error):
    """A decoded message whose content does not make a transaction.

    Raised for a non-numeric amount, an unknown MTI class, a field of the
    wrong type and the like. Like every codec error, it names the field and
    never quotes the field's content: that content may be a PAN.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field}: {reason}")
        self.field = field
        self.reason = reason
