"""The one link interface every transport implements.

A `Transport` moves bytes to and from one terminal (or one upstream host):
serial port, USB device or TCP connection. It knows nothing of framing or
ISO 8583; `drivers.channel` runs a profile's framer over any transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class LinkClosed(Exception):
    """The peer went away: cable pulled, device unplugged, socket closed."""


@dataclass(frozen=True, slots=True)
class TerminalIdentity:
    """Who is on the other end, independent of /dev/ttyACMn numbering.

    `key` is stable across replugs: "usb:0b00:0054:SN1234" (VID:PID + serial
    number), "serial:/dev/serial/by-id/..." or the configured port, or
    "tcp:127.0.0.1:40512" for a dial-in connection until field 41 names it.
    """

    kind: str  # "serial", "usb" or "tcp"
    key: str
    description: str = ""


class Transport(Protocol):
    """An open byte link. All methods are coroutines except `identity`."""

    @property
    def identity(self) -> TerminalIdentity: ...

    async def read(self, max_bytes: int = 4096) -> bytes:
        """Next bytes available (at least one); raises LinkClosed when the peer is gone."""
        ...

    async def write(self, data: bytes) -> None:
        """Write all of `data`; raises LinkClosed when the peer is gone."""
        ...

    async def close(self) -> None:
        """Release the port/device/socket; safe to call twice."""
        ...


class LinkUnavailable(LinkClosed):
    """Opening failed: no such port or device, it is busy, or the host refused.

    A subclass of LinkClosed so one reconnect loop handles "went away" and
    "not back yet" alike.
    """
