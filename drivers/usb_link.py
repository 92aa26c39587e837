"""USB transport with pyusb: vendor bulk endpoints, read by one owned thread.

`open_usb` finds the device by VID:PID (and serial number when given),
detaches a kernel driver that holds the interface (cdc_acm on Linux),
claims the interface and uses the profile's bulk endpoints, or the first
bulk IN/OUT pair of the interface when those are absent. pyusb calls block,
so opening runs in a worker thread and reads run in a `ReaderThread` that
polls with a short timeout (pyusb reads cannot be interrupted; the timeout
bounds how long close() waits). Any USB error but a timeout — above all
errno 19 (ENODEV), the device was unplugged — ends the line with LinkClosed.

`backend_from_option` maps the gateway's `usb_backend` option: None (always
in production) is libusb from the libusb-package wheel; "relay:HOST:PORT"
is a RelayBackend to a simulator's emulated device.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import libusb_package
import usb.core
import usb.util

from posgw.drivers.base import LinkClosed, LinkUnavailable, TerminalIdentity
from posgw.drivers.reader_thread import ThreadedTransport
from posgw.drivers.usb_relay import RelayBackend
from posgw.protocols.profile import UsbMatch

# 100 ms read polls: how long close() may wait for the reader thread.
READ_TIMEOUT_MS = 100
# 5 s for one message to leave: a device that takes longer has stalled.
WRITE_TIMEOUT_MS = 5000
READ_SIZE = 4096


def usb_key(vid: int, pid: int, serial_number: str | None) -> str:
    """The stable identity key: usb:vvvv:pppp:SERIAL."""
    return f"usb:{vid:04x}:{pid:04x}:{serial_number or ''}"


def backend_from_option(option: str | None) -> Any:
    """The pyusb backend named by a config value (None: libusb)."""
    if option is None:
        return libusb_package.get_libusb1_backend()
    kind, _, address = option.partition(":")
    host, _, port = address.rpartition(":")
    if kind != "relay" or not host or not port.isdigit():
        raise ValueError(f"usb backend {option!r}: expected none or relay:HOST:PORT")
    return RelayBackend(host, int(port))


class UsbTransport(ThreadedTransport):
    """A claimed USB interface as a `Transport`."""

    device_errors = (usb.core.USBError,)

    def __init__(self, device: Any, interface: int, ep_in: int, ep_out: int,
                 identity: TerminalIdentity, reattach: bool) -> None:
        self._device, self._interface = device, interface
        self._ep_in, self._ep_out = ep_in, ep_out
        self._reattach = reattach
        super().__init__(identity, f"usb-reader {identity.key}")

    def _read_once(self) -> bytes:
        try:
            return bytes(self._device.read(self._ep_in, READ_SIZE, READ_TIMEOUT_MS))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:  # ENODEV (unplugged) and every other fault
            raise LinkClosed(f"{self._identity.key}: {exc}") from exc

    def _write_blocking(self, data: bytes) -> None:
        written = self._device.write(self._ep_out, data, WRITE_TIMEOUT_MS)
        if written != len(data):
            raise LinkClosed(f"{self._identity.key}: wrote {written} of {len(data)} bytes")

    def _release(self) -> None:
        # the device may be gone already: releasing is best effort
        with contextlib.suppress(usb.core.USBError):
            usb.util.release_interface(self._device, self._interface)
            if self._reattach:
                self._device.attach_kernel_driver(self._interface)
        usb.util.dispose_resources(self._device)


async def open_usb(match: UsbMatch, *, serial_number: str | None = None,
                   backend: Any = None) -> UsbTransport:
    """Open the device `match` describes; LinkUnavailable when absent or busy."""
    backend = backend if backend is not None else backend_from_option(None)
    try:
        opened = await asyncio.to_thread(_open_blocking, match, serial_number, backend)
    except (usb.core.USBError, ValueError, NotImplementedError) as exc:
        key = usb_key(match.vid, match.pid, serial_number)
        raise LinkUnavailable(f"{key}: {exc}") from exc
    return UsbTransport(*opened)  # built here: its reader thread needs the running loop


def _open_blocking(
    match: UsbMatch, serial_number: str | None, backend: Any
) -> tuple[Any, int, int, int, TerminalIdentity, bool]:
    device = _find(match, serial_number, backend)
    reattach = _detach_kernel_driver(device, match.interface)
    _ensure_configured(device)
    usb.util.claim_interface(device, match.interface)
    ep_in, ep_out = _endpoints(device, match)
    identity = TerminalIdentity("usb", usb_key(match.vid, match.pid, device.serial_number),
                                match.description)
    return device, match.interface, ep_in, ep_out, identity, reattach


def _find(match: UsbMatch, serial_number: str | None, backend: Any) -> Any:
    for device in usb.core.find(find_all=True, idVendor=match.vid, idProduct=match.pid,
                                backend=backend):
        if serial_number is None or device.serial_number == serial_number:
            return device
    raise LinkUnavailable(f"{usb_key(match.vid, match.pid, serial_number)}: not present")


def _ensure_configured(device: Any) -> None:
    try:
        device.get_active_configuration()
    except usb.core.USBError:  # unconfigured: take the first configuration
        device.set_configuration()


def _detach_kernel_driver(device: Any, interface: int) -> bool:
    """Detach cdc_acm (or another driver) if it holds the interface; True if we did."""
    try:
        if device.is_kernel_driver_active(interface):
            device.detach_kernel_driver(interface)
            return True
    except NotImplementedError:
        pass  # platforms without kernel drivers to detach (Windows, macOS)
    return False


def _endpoints(device: Any, match: UsbMatch) -> tuple[int, int]:
    """The profile's endpoints when the interface has them, else its first bulk pair."""
    interface = device.get_active_configuration()[(match.interface, 0)]
    bulk = [ep.bEndpointAddress for ep in interface
            if usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK]
    if match.ep_in in bulk and match.ep_out in bulk:
        return match.ep_in, match.ep_out
    inputs = [a for a in bulk if usb.util.endpoint_direction(a) == usb.util.ENDPOINT_IN]
    outputs = [a for a in bulk if usb.util.endpoint_direction(a) == usb.util.ENDPOINT_OUT]
    if not inputs or not outputs:
        raise LinkUnavailable(f"interface {match.interface} has no bulk IN/OUT pair")
    return inputs[0], outputs[0]
