"""Which known terminals are plugged in: serial ports and USB devices vs profiles.

Like `serial.tools.list_ports`, discovery returns plain records. Each is
keyed by identity (USB VID:PID + serial number), never by tty number, so a
terminal keeps its key when it comes back as /dev/ttyACM1. A CDC-ACM
terminal shows up both as a serial port and as a USB device: the serial
record wins (the kernel's cdc_acm driver serves it); a USB-only record is
kept for profiles whose USB entry says mode = "bulk", or when no port
exists for it. When several profiles claim the same VID:PID, the first
profile given wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import usb.core
from serial.tools import list_ports

from posgw.drivers.base import TerminalIdentity
from posgw.drivers.usb_link import usb_key
from posgw.protocols.profile import Profile, UsbMatch


@dataclass(frozen=True, slots=True)
class DiscoveredTerminal:
    identity: TerminalIdentity
    profile: str
    driver: str  # "serial" or "usb"
    port: str | None
    vid: int
    pid: int
    serial_number: str | None
    description: str


ProfileHit = tuple[Profile, UsbMatch]


def match_profile(profiles: Sequence[Profile], vid: int, pid: int) -> ProfileHit | None:
    for profile in profiles:
        for match in profile.transport.usb:
            if (match.vid, match.pid) == (vid, pid):
                return profile, match
    return None


def discover(
    profiles: Sequence[Profile], *, usb_backend: Any = None,
    comports: Callable[[], Iterable[Any]] = list_ports.comports,
) -> list[DiscoveredTerminal]:
    """Every connected terminal some profile claims (blocking: call in a thread)."""
    found: dict[str, DiscoveredTerminal] = {}
    for port in comports():
        if port.vid is None or port.pid is None:
            continue
        hit = match_profile(profiles, port.vid, port.pid)
        if hit is not None:
            record = _record(hit, "serial", port.device, port.vid, port.pid, port.serial_number)
            found[record.identity.key] = record
    if usb_backend is not None:
        for device in usb.core.find(find_all=True, backend=usb_backend):
            hit = match_profile(profiles, device.idVendor, device.idProduct)
            if hit is None:
                continue
            record = _record(hit, "usb", None, device.idVendor, device.idProduct,
                             _serial_number(device))
            if record.identity.key not in found or hit[1].mode == "bulk":
                found[record.identity.key] = record
    return sorted(found.values(), key=lambda r: r.identity.key)


def _record(hit: tuple[Profile, UsbMatch], driver: str, port: str | None, vid: int, pid: int,
            serial_number: str | None) -> DiscoveredTerminal:
    profile, match = hit
    identity = TerminalIdentity("usb", usb_key(vid, pid, serial_number), match.description)
    return DiscoveredTerminal(identity, profile.name, driver, port, vid, pid, serial_number,
                              match.description)


def _serial_number(device: Any) -> str | None:
    try:
        return str(device.serial_number) if device.serial_number else None
    except (usb.core.USBError, ValueError):  # no permission to read strings
        return None
