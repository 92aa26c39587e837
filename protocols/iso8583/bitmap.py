"""Primary, secondary and tertiary bitmaps, raw binary or hex-ASCII.

Bit 1 of the primary bitmap flags a secondary bitmap (fields 65-128); when
the dialect uses one, bit 65 flags a tertiary bitmap (fields 129-192).
Decoding goes through per-byte lookup tables built once at import: one
table index per bitmap byte instead of a loop over 64 bits.
"""

from __future__ import annotations

from collections.abc import Sequence


def _byte_table(first_field: int) -> tuple[tuple[int, ...], ...]:
    return tuple(
        tuple(first_field + bit for bit in range(8) if value & (0x80 >> bit))
        for value in range(256)
    )


#: FIELDS_BY_BYTE[i][v]: field numbers flagged when bitmap byte i (0-based,
#: across all three bitmaps) has value v.
FIELDS_BY_BYTE = tuple(_byte_table(1 + 8 * i) for i in range(24))


def fields_in(bitmap: bytes, first_byte: int) -> tuple[int, ...]:
    """Field numbers flagged by an 8-byte bitmap whose first byte is byte `first_byte`."""
    t = FIELDS_BY_BYTE
    b = bitmap
    i = first_byte
    return (
        t[i][b[0]] + t[i + 1][b[1]] + t[i + 2][b[2]] + t[i + 3][b[3]]
        + t[i + 4][b[4]] + t[i + 5][b[5]] + t[i + 6][b[6]] + t[i + 7][b[7]]
    )  # fmt: skip


#: BIT_OF_FIELD[n]: field n's bit in the 192-bit integer of all three bitmaps.
BIT_OF_FIELD = tuple(1 << (192 - n) if n else 0 for n in range(193))


def build_bitmaps(numbers: Sequence[int]) -> bytes:
    """Raw bitmap bytes (8, 16 or 24) for a sorted sequence of data field numbers."""
    bits = BIT_OF_FIELD
    value = 0
    for n in numbers:
        value |= bits[n]
    highest = numbers[-1] if numbers else 0
    if highest > 64:
        value |= 1 << 191  # bit 1: secondary bitmap present
    if highest > 128:
        value |= 1 << 127  # bit 65: tertiary bitmap present
    size = 24 if highest > 128 else 16 if highest > 64 else 8
    return (value >> (8 * (24 - size))).to_bytes(size, "big")
