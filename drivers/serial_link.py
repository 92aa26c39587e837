"""Serial transport with pyserial, read by one owned thread.

Why a reader thread rather than pyserial-asyncio-fast: no extra dependency,
the same code on POSIX and Windows, and a clean stop — pyserial's
`cancel_read()` wakes a blocked read, the thread ends and `close()` joins
it. Writes are short (one ISO 8583 message) and go through
`asyncio.to_thread` with a write timeout so a stalled line (flow control
held off) never blocks the event loop.

A vanished device (USB-serial unplugged, pty master closed) makes pyserial
raise SerialException/OSError or report "readiness to read but returned no
data": all become LinkClosed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import serial

from posgw.drivers.base import LinkClosed, LinkUnavailable, TerminalIdentity
from posgw.drivers.reader_thread import ThreadedTransport
from posgw.protocols.profile import TransportSpec

# 5 s to push one message out: generous at 9600 baud (about 1 KB/s).
WRITE_TIMEOUT_S = 5.0

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
_STOPBITS = {1: serial.STOPBITS_ONE, 1.5: serial.STOPBITS_ONE_POINT_FIVE, 2: serial.STOPBITS_TWO}


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings: the profile's defaults, then the terminal's overrides."""

    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    flow: str = "none"  # "none", "rtscts" or "xonxoff"

    @classmethod
    def from_spec(cls, spec: TransportSpec, **overrides: Any) -> SerialSettings:
        """Settings from a profile's `[transport]`, with per-terminal overrides."""
        base = cls(spec.baud, spec.bytesize, spec.parity, spec.stopbits, spec.flow)
        unknown = set(overrides) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown serial settings: {', '.join(sorted(unknown))}")
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def pyserial_kwargs(self) -> dict[str, Any]:
        return {
            "baudrate": self.baud,
            "bytesize": self.bytesize,
            "parity": _PARITY[self.parity],
            "stopbits": _STOPBITS[self.stopbits],
            "rtscts": self.flow == "rtscts",
            "xonxoff": self.flow == "xonxoff",
        }


class SerialTransport(ThreadedTransport):
    """An open pyserial port as a `Transport`."""

    device_errors = (serial.SerialException, OSError)

    def __init__(self, port: serial.Serial, identity: TerminalIdentity) -> None:
        self._port = port
        super().__init__(identity, f"serial-reader {port.port}", interrupt=port.cancel_read)

    def _read_once(self) -> bytes:
        try:
            # block for the first byte, then take whatever else has arrived
            return bytes(self._port.read(max(1, self._port.in_waiting)))
        except (serial.SerialException, OSError, TypeError) as exc:
            # TypeError: pyserial reading a port closed under it (fd None)
            raise LinkClosed(f"{self._identity.key}: {exc}") from exc

    def _write_blocking(self, data: bytes) -> None:
        written = self._port.write(data)
        if written != len(data):
            raise serial.SerialTimeoutException(f"wrote {written} of {len(data)} bytes")
        self._port.flush()

    def _release(self) -> None:
        self._port.close()


async def open_serial(
    port: str, settings: SerialSettings, *, identity: TerminalIdentity | None = None
) -> SerialTransport:
    """Open `port` (a path such as a /dev/serial/by-id link); LinkUnavailable if absent."""
    try:
        handle = await asyncio.to_thread(
            serial.Serial, port, timeout=None, write_timeout=WRITE_TIMEOUT_S,
            exclusive=True, **settings.pyserial_kwargs(),
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkUnavailable(f"serial:{port}: {exc}") from exc
    identity = identity or TerminalIdentity("serial", f"serial:{port}")
    return SerialTransport(handle, identity)
