"""Strict readers of decoded field values, shared by normalization.

A profile may hand over a binary value where text belongs, or digits from
another script: these readers turn both into `NormalizeError` naming the
field, never quoting it.
"""

from __future__ import annotations

from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize.errors import NormalizeError


def is_ascii_digits(text: str) -> bool:
    """Non-empty ASCII digits (str.isdigit alone accepts '²' and '٣', which int() rejects)."""
    return text.isascii() and text.isdigit()


def text_field(message: Message, number: int) -> str | None:
    """Field `number` as text; None when absent; NormalizeError when not text."""
    value = message.fields.get(number)
    if value is None:
        return None
    if not isinstance(value, str):
        raise NormalizeError(str(number), "expected a text value")
    return value


def stripped_field(message: Message, number: int) -> str | None:
    """Text without the space padding of fixed-length fields; blank is None."""
    value = text_field(message, number)
    if value is None:
        return None
    return value.strip() or None


def digits_field(message: Message, number: int, *, exact: int) -> str | None:
    """Field `number`, which must be exactly `exact` ASCII digits when present."""
    value = text_field(message, number)
    if value is not None and (len(value) != exact or not is_ascii_digits(value)):
        raise NormalizeError(str(number), f"expected {exact} digits")
    return value
