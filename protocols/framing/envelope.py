"""TPDU and fixed header: what travels between the length header and ISO 8583.

UnionPay-style terminals send ``length | TPDU | POS header | message``:

* TPDU, 5 bytes: id (0x60 for transactions), destination NII (2 bytes),
  source NII (2 bytes), raw big-endian; NIIs are usually written as BCD digits
  (NII 003 is ``00 03``). A reply swaps destination and source (jPOS
  NACChannel's ``tpdu-swap``, on by default there).
* a fixed header of N bytes (UnionPay: 6 bytes of application type, version,
  terminal status, processing request, software version), kept raw and sent
  back unchanged with the reply.

Values only: splitting a received frame, which may produce an event, is
the link's (`link.split_envelope`), so events may name `Envelope` without
an import loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from posgw.protocols.framing.errors import FramingError

TPDU_SIZE = 5
TPDU_ID_TRANSACTION = 0x60


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Tpdu:
    """Transport protocol data unit: id, destination NII, source NII."""

    tpdu_id: int = TPDU_ID_TRANSACTION
    destination: int
    source: int

    def __post_init__(self) -> None:
        if not 0 <= self.tpdu_id <= 0xFF:
            raise FramingError(f"TPDU id must fit one byte, got {self.tpdu_id}")
        for name, value in (("destination", self.destination), ("source", self.source)):
            if not 0 <= value <= 0xFFFF:
                raise FramingError(f"TPDU {name} must fit two bytes, got {value}")

    @classmethod
    def from_bytes(cls, data: bytes) -> Tpdu:
        """Read a TPDU from exactly 5 bytes."""
        if len(data) != TPDU_SIZE:
            raise FramingError(f"a TPDU is {TPDU_SIZE} bytes, got {len(data)}")
        return cls(
            tpdu_id=data[0],
            destination=int.from_bytes(data[1:3], "big"),
            source=int.from_bytes(data[3:5], "big"),
        )

    def __repr__(self) -> str:
        return f"Tpdu({self.tpdu_id:02X} {self.destination:04X} {self.source:04X})"

    def to_bytes(self) -> bytes:
        return (
            bytes((self.tpdu_id,))
            + self.destination.to_bytes(2, "big")
            + self.source.to_bytes(2, "big")
        )

    def swapped(self) -> Tpdu:
        """The TPDU of a reply: destination and source exchanged."""
        return Tpdu(tpdu_id=self.tpdu_id, destination=self.source, source=self.destination)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What precedes the ISO 8583 message inside a frame (may be empty)."""

    tpdu: Tpdu | None = None
    header: bytes = b""

    @property
    def size(self) -> int:
        return (TPDU_SIZE if self.tpdu is not None else 0) + len(self.header)

    def reply(self) -> Envelope:
        """The envelope for our answer: TPDU swapped, header echoed."""
        tpdu = self.tpdu.swapped() if self.tpdu is not None else None
        return Envelope(tpdu, self.header)

    def to_bytes(self) -> bytes:
        tpdu = self.tpdu.to_bytes() if self.tpdu is not None else b""
        return tpdu + self.header


def join_envelope(envelope: Envelope, message: bytes) -> bytes:
    """The frame payload carrying `message` inside `envelope`."""
    return envelope.to_bytes() + message
