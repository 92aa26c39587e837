"""The one place that masks card data for display, logs and payloads.

PAN: first 6 and last 4 digits kept (PCI DSS 3.4 display rule), the rest '*'.
Track data and PIN blocks are never shown: only their shape survives.
"""

from __future__ import annotations

import re

_TRACK_SEPARATORS = "=D^"
#: 13-19 digits (ISO/IEC 7812 PAN lengths), single spaces or dashes between them.
_CARD_LIKE = re.compile(rb"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")


def mask_pan(pan: str) -> str:
    """Mask a PAN to first 6 + last 4; PANs of 10 digits or fewer become all '*'."""
    if len(pan) <= 10:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def card_number_at(data: bytes) -> int | None:
    """The offset of the first run in `data` that reads as a card number
    (13-19 digits passing the Luhn check), or None. A guard for text (a
    letter, an export): digits inside an image or a compressed file are
    not seen."""
    for match in _CARD_LIKE.finditer(data):
        digits = bytes(c for c in match.group() if 48 <= c <= 57)
        if luhn_valid(digits):
            return match.start()
    return None


def luhn_valid(digits: bytes) -> bool:
    """ISO/IEC 7812's check digit holds for these ASCII digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = (char - 48) * (2 if index % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def mask_track(track: str) -> str:
    """Mask track 1 or 2 data: the PAN masked, everything after it starred.

    Keeps the start sentinel/format code and the first separator so an
    operator can still see the track's shape ("476173******0010=********").
    """
    start = 0
    while start < len(track) and not track[start].isdigit():
        start += 1
    end = start
    while end < len(track) and track[end] not in _TRACK_SEPARATORS:
        end += 1
    if end >= len(track):
        return "*" * len(track)
    masked_pan = mask_pan(track[start:end])
    return track[:start] + masked_pan + track[end] + "*" * (len(track) - end - 1)


def mask_secret(value: str | bytes) -> str:
    """A PIN block, key or MAC: only its length is shown."""
    size = len(value) * 2 if isinstance(value, bytes) else len(value)
    return "*" * size


def mask_account(account: str) -> str:
    """Mask a bank account number (IBAN or other id) to its first 4 and last 4
    characters, the rest '*'; 8 characters or fewer become all '*'. Enough to
    tell a merchant's accounts apart, not enough to pay into one."""
    if len(account) <= 8:
        return "*" * len(account)
    return account[:4] + "*" * (len(account) - 8) + account[-4:]
