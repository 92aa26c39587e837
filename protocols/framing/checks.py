"""Frame check sequences: XOR LRC and the ZVT CRC-16.

`LrcCheck` and `CrcCheck` share one shape (`size`, `digest`) so the envelope
framers take either; which bytes a check covers is the framer's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import ClassVar, Final

from posgw.protocols.iso8583.errors import SpecError


def lrc_xor(data: bytes, seed: int = 0) -> int:
    """Longitudinal redundancy check: `seed` XOR every byte of `data`.

    ECR protocols seed it with 0x00 (most) or 0x7F (Nexi ECR17).
    """
    return reduce(xor, data, seed)


def _kermit_table() -> tuple[int, ...]:
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


# CRC-16/CCITT in its reflected form, as ZVT's serial transport uses it
# (catalogued as CRC-16/KERMIT): polynomial 0x1021 processed LSB first (0x8408
# reflected), initial value 0, no final XOR; check value of b"123456789" is
# 0x2189. ZVT computes it over the unstuffed APDU plus the closing ETX and sends
# the low byte first (ZVT PA00P016 transport protocol; Wireshark's packet-zvt.c
# reads the CRC little-endian after DLE ETX; Portalum.Zvt's ChecksumHelper
# appends ETX and byte-swaps the same way).
_KERMIT_TABLE: Final = _kermit_table()


def crc16_kermit(data: bytes, crc: int = 0) -> int:
    """CRC-16/KERMIT (reflected CCITT) of `data`; pass `crc` to continue a run."""
    for byte in data:
        crc = (crc >> 8) ^ _KERMIT_TABLE[(crc ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class LrcCheck:
    """One-byte XOR LRC starting from `seed` (0x00 or 0x7F in the field)."""

    seed: int = 0x00
    size: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if not 0 <= self.seed <= 0xFF:
            raise SpecError("framing.lrc_seed", f"must be 0..255, got {self.seed}")

    def digest(self, data: bytes) -> bytes:
        return bytes((lrc_xor(data, self.seed),))


@dataclass(frozen=True, slots=True)
class CrcCheck:
    """Two-byte CRC-16/KERMIT, low byte first on the wire (ZVT)."""

    size: ClassVar[int] = 2

    def digest(self, data: bytes) -> bytes:
        return crc16_kermit(data).to_bytes(2, "little")


Check = LrcCheck | CrcCheck
