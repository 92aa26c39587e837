"""The decoded form of one ISO 8583 message."""

from __future__ import annotations

from dataclasses import dataclass, field

#: A field value: text fields (n, a, an, ans, z) are `str`; binary fields
#: (b, whatever their wire encoding) are `bytes`.
FieldValue = str | bytes


@dataclass(slots=True)
class Message:
    """MTI plus data elements by number.

    Bitmaps are not stored: they follow from which fields are present
    (field 1 and field 65 are implied by fields above 64 and above 128).
    """

    mti: str
    fields: dict[int, FieldValue] = field(default_factory=dict)

    def text(self, number: int, default: str = "") -> str:
        """Field `number` as text, or `default` when absent or binary."""
        value = self.fields.get(number)
        return value if isinstance(value, str) else default

    def binary(self, number: int) -> bytes | None:
        """Field `number` as bytes, or None when absent or textual."""
        value = self.fields.get(number)
        return value if isinstance(value, bytes) else None
