"""Transport wrappers that misbehave once, for line-noise and cable-pull scenarios.

They wrap any `Transport` (TCP, pty, USB) and touch only what the terminal
writes, so the peer sees real damaged bytes.
"""

from __future__ import annotations

from posgw.drivers.base import LinkClosed, TerminalIdentity, Transport

#: Framing bytes a corruption must avoid (STX, ETX, EOT, ENQ, ACK, DLE, NAK,
#: ETB): changing one of them breaks the frame structure instead of its check.
_CONTROL_BYTES = frozenset({0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x15, 0x17})
#: Writes at most this long are link control bytes (ACK/NAK), never frames.
_CONTROL_WRITE_MAX = 2


class _Wrapper:
    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.armed = True

    @property
    def identity(self) -> TerminalIdentity:
        return self.inner.identity

    async def read(self, max_bytes: int = 4096) -> bytes:
        return await self.inner.read(max_bytes)

    async def close(self) -> None:
        await self.inner.close()


class CorruptOnce(_Wrapper):
    """Flips one bit in the middle of the next frame written; later frames pass."""

    async def write(self, data: bytes) -> None:
        if self.armed and len(data) > _CONTROL_WRITE_MAX:
            self.armed = False
            data = corrupt_middle_byte(data)
        await self.inner.write(data)


class CutMidFrame(_Wrapper):
    """Writes half of the next frame, then drops the line (a pulled cable)."""

    async def write(self, data: bytes) -> None:
        if self.armed and len(data) > _CONTROL_WRITE_MAX:
            self.armed = False
            await self.inner.write(data[: len(data) // 2])
            await self.inner.close()
            raise LinkClosed(f"{self.identity.key}: cable pulled mid-frame")
        await self.inner.write(data)


def corrupt_middle_byte(frame: bytes) -> bytes:
    """`frame` with one data byte near its middle changed (lowest bit flipped)."""
    damaged = bytearray(frame)
    for index in range(len(frame) // 2, len(frame) - 1):
        flipped = frame[index] ^ 0x01
        if frame[index] not in _CONTROL_BYTES and flipped not in _CONTROL_BYTES:
            damaged[index] = flipped
            return bytes(damaged)
    raise ValueError("no data byte to corrupt")
