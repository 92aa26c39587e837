"""Opening a configured terminal's line: serial port, USB device or TCP peer."""

from __future__ import annotations

from typing import Any

from posgw.drivers.base import Transport
from posgw.drivers.serial_link import SerialSettings, open_serial
from posgw.drivers.tcp_link import connect_tcp
from posgw.drivers.usb_link import open_usb
from posgw.gateway.config import TerminalConfig
from posgw.protocols.profile import Profile, UsbMatch


async def open_terminal_link(terminal: TerminalConfig, profile: Profile,
                             usb_backend: Any) -> Transport:
    """Raises LinkUnavailable (a LinkClosed) when the terminal is not there."""
    if terminal.driver == "serial":
        assert terminal.port is not None  # config validation requires it
        settings = SerialSettings.from_spec(profile.transport, **terminal.overrides)
        return await open_serial(terminal.port, settings)
    if terminal.driver == "usb":
        return await open_usb(usb_match(terminal, profile),
                              serial_number=terminal.serial_number,
                              backend=usb_backend)
    host, _, port = (terminal.port or "").rpartition(":")
    return await connect_tcp(host, int(port))


def usb_match(terminal: TerminalConfig, profile: Profile) -> UsbMatch:
    """The profile's USB identity with the configured VID:PID (its endpoints, mode)."""
    vid, pid = (int(part, 16) for part in (terminal.usb or "0:0").split(":"))
    for match in profile.transport.usb:
        if (match.vid, match.pid) == (vid, pid):
            return match
    if profile.transport.usb:  # same device family, another PID: keep its endpoints
        first = profile.transport.usb[0]
        return UsbMatch(vid, pid, first.description, first.mode, first.interface,
                        first.ep_in, first.ep_out)
    return UsbMatch(vid, pid)
