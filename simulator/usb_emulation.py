"""An emulated USB terminal behind a real pyusb backend, and its relay server.

`EmulatedUsbDevice.backend` subclasses `usb.backend.IBackend`: the gateway's
real pyusb calls (find, string descriptors, set_configuration, kernel
driver detach, claim, bulk transfers) run unchanged; only the device is
simulated. One configuration, one vendor-class interface with a bulk IN and
a bulk OUT endpoint. The terminal's end is `device_transport()`, a
Transport. `unplug()` removes the device from enumeration and makes every
pending and later transfer on its handles fail with errno 19 (ENODEV), as
libusb does; handles stay dead after `replug()`, like real ones.

`UsbRelayServer` serves the backend calls on loopback for a gateway in
another process (see drivers/usb_relay.py for the wire format).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import itertools
import json
import threading
from types import SimpleNamespace, TracebackType
from typing import Any

import usb.backend
import usb.core
import usb.util

from posgw.drivers.base import LinkClosed, TerminalIdentity
from posgw.drivers.tcp_link import TcpServer, TcpTransport
from posgw.drivers.usb_relay import error_to_wire, from_wire, to_wire

_BULK, _MAX_PACKET = 0x02, 64
_VENDOR_CLASS = 0xFF
_STRING_DESCRIPTOR, _GET_DESCRIPTOR = 0x03, 0x06
_LANG_EN_US = 0x0409
_STRINGS = {1: "manufacturer", 2: "product", 3: "serial_number"}


def _gone() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)",
                             error_code=-4, errno=errno.ENODEV)


class EmulatedUsbDevice:
    """One simulated USB terminal; see the module docstring."""

    _numbers = itertools.count(1)

    def __init__(self, vid: int, pid: int, serial_number: str, *, ep_in: int = 0x81,
                 ep_out: int = 0x01, interface: int = 0, manufacturer: str = "posgw",
                 product: str = "Emulated terminal") -> None:
        self.vid, self.pid, self.serial_number = vid, pid, serial_number
        self.ep_in, self.ep_out, self.interface = ep_in, ep_out, interface
        self.manufacturer, self.product = manufacturer, product
        self.address = next(self._numbers)
        self.present = True
        self.kernel_driver_active = True  # as when cdc_acm bound it
        self.claimed: set[int] = set()
        self._generation = 0
        self._handles: dict[int, int] = {}  # handle -> generation it was opened in
        self._handle_numbers = itertools.count(1)
        self._cond = threading.Condition()
        self._to_host = bytearray()
        self._terminal: _DeviceTransport | None = None
        self.backend = EmulatedBackend(self)

    @property
    def identity(self) -> TerminalIdentity:
        key = f"usb:{self.vid:04x}:{self.pid:04x}:{self.serial_number}"
        return TerminalIdentity("usb", key, self.product)

    def device_transport(self) -> TerminalTransport:
        """The terminal's end of the cable (one per plug; call in the event loop)."""
        if not self.present:
            raise RuntimeError("the device is unplugged")
        if self._terminal is None:
            self._terminal = _DeviceTransport(self, self._generation)
        return self._terminal

    def unplug(self) -> None:
        with self._cond:
            self.present = False
            self._generation += 1
            self._to_host.clear()
            self.claimed.clear()
            self._cond.notify_all()
        if self._terminal is not None:
            self._terminal.lost()
            self._terminal = None

    def replug(self) -> None:
        with self._cond:
            self.present, self.kernel_driver_active = True, True

    # --- host side (called by EmulatedBackend, from any thread) ----------------

    def open_handle(self) -> int:
        with self._cond:
            self._alive_or_raise()
            handle = next(self._handle_numbers)
            self._handles[handle] = self._generation
            return handle

    def check_handle(self, handle: int) -> None:
        with self._cond:
            self._check_locked(handle)

    def host_write(self, handle: int, data: bytes) -> int:
        self.check_handle(handle)
        terminal = self._terminal
        if terminal is None:
            raise usb.core.USBError("pipe error: nobody reads", errno=errno.EPIPE)
        terminal.deliver(data)
        return len(data)

    def host_read(self, handle: int, size: int, timeout_ms: int) -> bytes:
        with self._cond:
            self._cond.wait_for(lambda: self._to_host or self._dead(handle),
                                timeout_ms / 1000 if timeout_ms else None)
            self._check_locked(handle)
            if not self._to_host:
                raise usb.core.USBTimeoutError("Operation timed out", error_code=-7,
                                               errno=errno.ETIMEDOUT)
            chunk = bytes(self._to_host[:size])
            del self._to_host[:size]
            return chunk

    def device_write(self, data: bytes, generation: int) -> None:
        with self._cond:
            if generation != self._generation:
                raise LinkClosed("device unplugged")
            self._to_host.extend(data)
            self._cond.notify_all()

    def _dead(self, handle: int) -> bool:
        return self._handles.get(handle) != self._generation

    def _check_locked(self, handle: int) -> None:
        if self._dead(handle):
            raise _gone()

    def _alive_or_raise(self) -> None:
        if not self.present:
            raise _gone()


class _DeviceTransport:
    """The terminal's end: bytes the host wrote come in, bytes we write go out."""

    def __init__(self, device: EmulatedUsbDevice, generation: int) -> None:
        self._device, self._generation = device, generation
        self._loop = asyncio.get_running_loop()
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._identity = TerminalIdentity("usb", f"usb-device:{device.serial_number}")

    @property
    def identity(self) -> TerminalIdentity:
        return self._identity

    def deliver(self, data: bytes) -> None:  # any thread
        with contextlib.suppress(RuntimeError):  # loop closed: nobody listens
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, data)

    def lost(self) -> None:  # any thread
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, None)

    async def read(self, max_bytes: int = 4096) -> bytes:
        data = await self._inbox.get()
        if data is None:
            self._inbox.put_nowait(None)
            raise LinkClosed("usb device unplugged")
        return data

    async def write(self, data: bytes) -> None:
        self._device.device_write(data, self._generation)

    async def close(self) -> None:
        self.lost()


TerminalTransport = _DeviceTransport


class EmulatedBackend(usb.backend.IBackend):  # type: ignore[misc]
    """The pyusb backend of one EmulatedUsbDevice; device id 1, int handles."""

    def __init__(self, device: EmulatedUsbDevice) -> None:
        self.device = device

    def enumerate_devices(self) -> list[int]:
        return [self.device.address] if self.device.present else []

    def get_device_descriptor(self, dev: int) -> SimpleNamespace:
        d = self.device
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=_MAX_PACKET, idVendor=d.vid, idProduct=d.pid,
            bcdDevice=0x0100, iManufacturer=1, iProduct=2, iSerialNumber=3,
            bNumConfigurations=1, address=d.address, bus=1, port_number=d.address,
            port_numbers=[d.address], speed=3)

    def get_configuration_descriptor(self, dev: int, config: int) -> SimpleNamespace:
        return SimpleNamespace(
            bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=1,
            bConfigurationValue=1, iConfiguration=0, bmAttributes=0x80, bMaxPower=50,
            extra_descriptors=[])

    def get_interface_descriptor(self, dev: int, intf: int, alt: int,
                                 config: int) -> SimpleNamespace:
        return SimpleNamespace(
            bLength=9, bDescriptorType=4, bInterfaceNumber=self.device.interface,
            bAlternateSetting=0, bNumEndpoints=2, bInterfaceClass=_VENDOR_CLASS,
            bInterfaceSubClass=0, bInterfaceProtocol=0, iInterface=0, extra_descriptors=[])

    def get_endpoint_descriptor(self, dev: int, ep: int, intf: int, alt: int,
                                config: int) -> SimpleNamespace:
        address = (self.device.ep_in, self.device.ep_out)[ep]
        return SimpleNamespace(
            bLength=7, bDescriptorType=5, bEndpointAddress=address, bmAttributes=_BULK,
            wMaxPacketSize=_MAX_PACKET, bInterval=0, bRefresh=0, bSynchAddress=0,
            extra_descriptors=[])

    def open_device(self, dev: int) -> int:
        return self.device.open_handle()

    def close_device(self, dev_handle: int) -> None:
        pass  # closing a dead handle is fine, as in libusb

    def set_configuration(self, dev_handle: int, config_value: int) -> None:
        self.device.check_handle(dev_handle)

    def get_configuration(self, dev_handle: int) -> int:
        self.device.check_handle(dev_handle)
        return 1

    def set_interface_altsetting(self, dev_handle: int, intf: int, altsetting: int) -> None:
        self.device.check_handle(dev_handle)

    def claim_interface(self, dev_handle: int, intf: int) -> None:
        self.device.check_handle(dev_handle)
        if self.device.kernel_driver_active:
            raise usb.core.USBError("Resource busy", error_code=-6, errno=errno.EBUSY)
        self.device.claimed.add(intf)

    def release_interface(self, dev_handle: int, intf: int) -> None:
        self.device.check_handle(dev_handle)
        self.device.claimed.discard(intf)

    def bulk_write(self, dev_handle: int, ep: int, intf: int, data: Any, timeout: int) -> int:
        return self.device.host_write(dev_handle, bytes(data))

    def bulk_read(self, dev_handle: int, ep: int, intf: int, buff: Any, timeout: int) -> int:
        chunk = self.device.host_read(dev_handle, len(buff), timeout)
        buff[: len(chunk)] = array.array("B", chunk)
        return len(chunk)

    def ctrl_transfer(self, dev_handle: int, bmRequestType: int, bRequest: int,
                      wValue: int, wIndex: int, data: Any, timeout: int) -> int:
        self.device.check_handle(dev_handle)
        if bRequest != _GET_DESCRIPTOR or wValue >> 8 != _STRING_DESCRIPTOR:
            raise usb.core.USBError("Pipe error", error_code=-9, errno=errno.EPIPE)
        index = wValue & 0xFF
        if index == 0:
            body = _LANG_EN_US.to_bytes(2, "little")
        else:
            body = str(getattr(self.device, _STRINGS[index])).encode("utf-16-le")
        descriptor = bytes((2 + len(body), _STRING_DESCRIPTOR)) + body
        size = min(len(descriptor), len(data))
        data[:size] = array.array("B", descriptor[:size])
        return size

    def clear_halt(self, dev_handle: int, ep: int) -> None:
        self.device.check_handle(dev_handle)

    def reset_device(self, dev_handle: int) -> None:
        self.device.check_handle(dev_handle)

    def is_kernel_driver_active(self, dev_handle: int, intf: int) -> bool:
        self.device.check_handle(dev_handle)
        return self.device.kernel_driver_active

    def detach_kernel_driver(self, dev_handle: int, intf: int) -> None:
        self.device.check_handle(dev_handle)
        self.device.kernel_driver_active = False

    def attach_kernel_driver(self, dev_handle: int, intf: int) -> None:
        self.device.check_handle(dev_handle)
        self.device.kernel_driver_active = True


class UsbRelayServer:
    """Serve `device.backend` calls on host:port (0: any free port)."""

    def __init__(self, device: EmulatedUsbDevice, host: str = "127.0.0.1", port: int = 0) -> None:
        self.device = device
        self._server = TcpServer(host, port, self._serve)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def option(self) -> str:
        """The gateway config value that points a RelayBackend here."""
        return f"relay:{self._server.host}:{self.port}"

    async def __aenter__(self) -> UsbRelayServer:
        await self._server.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._server.__aexit__(exc_type, exc, tb)

    async def _serve(self, connection: TcpTransport) -> None:
        pending = b""
        while True:
            pending += await connection.read()
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                # a bulk read blocks up to its timeout: keep it off the loop
                answer = await asyncio.to_thread(self._dispatch, json.loads(line))
                await connection.write(json.dumps(answer).encode() + b"\n")

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        args = [from_wire(arg) for arg in request["args"]]
        buffer = None
        if args and isinstance(args[-1], dict) and "buffer" in args[-1]:
            buffer = usb.util.create_buffer(args[-1]["buffer"])
            args[-1:] = []
            args.insert(-1 if request["call"] in ("bulk_read", "ctrl_transfer") else len(args),
                        buffer)
        try:
            result = getattr(self.device.backend, request["call"])(*args)
        except (usb.core.USBError, NotImplementedError) as exc:
            return {"error": error_to_wire(exc)}
        answer: dict[str, Any] = {"result": to_wire(result)}
        if buffer is not None:
            answer["filled"] = bytes(buffer[: int(result)]).hex()
        return answer
