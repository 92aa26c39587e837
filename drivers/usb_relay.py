"""RelayBackend: a pyusb backend whose device lives in another process.

The simulator's `UsbRelayServer` (simulator/usb_emulation.py) serves an
emulated device's backend calls on a loopback socket; this backend forwards
each pyusb backend call there, so the gateway's real pyusb code (find,
claim, bulk transfers) runs unchanged against a simulated device. Only
tests and `posgw demo` use it; production uses libusb.

Wire format, one JSON object per line: a request `{"call", "args"}`, an
answer `{"result"}` or `{"error": {"kind", "errno", "message"}}`. Bytes
travel as `{"hex": ...}`; a read buffer travels as `{"buffer": size}` and
comes back filled as `"filled"`. Descriptors come back as attribute maps.
Each calling thread gets its own connection, so a bulk read blocked in one
thread never delays a write from another.
"""

from __future__ import annotations

import array
import errno
import json
import socket
import threading
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

# A relayed call may block for its own USB timeout; this bounds a dead relay.
SOCKET_TIMEOUT_S = 30.0


def to_wire(value: Any) -> Any:
    """A backend argument or result as JSON data."""
    if isinstance(value, bytes | bytearray | array.array):
        return {"hex": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, SimpleNamespace):
        return {"attrs": {k: to_wire(v) for k, v in vars(value).items()}}
    return value


def from_wire(value: Any) -> Any:
    """The inverse of `to_wire`."""
    if isinstance(value, dict) and "hex" in value:
        return bytes.fromhex(value["hex"])
    if isinstance(value, dict) and "attrs" in value:
        return SimpleNamespace(**{k: from_wire(v) for k, v in value["attrs"].items()})
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    return value


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    kind = "timeout" if isinstance(exc, usb.core.USBTimeoutError) else "usb"
    if isinstance(exc, NotImplementedError):
        kind = "not-implemented"
    return {"kind": kind, "errno": getattr(exc, "errno", None), "message": str(exc)}


def error_from_wire(error: dict[str, Any]) -> BaseException:
    exc: BaseException
    if error["kind"] == "timeout":
        exc = usb.core.USBTimeoutError(error["message"], errno=error["errno"])
    elif error["kind"] == "not-implemented":
        exc = NotImplementedError(error["message"])
    else:
        exc = usb.core.USBError(error["message"], errno=error["errno"])
    return exc


class RelayBackend(usb.backend.IBackend):  # type: ignore[misc]
    """Forwards every pyusb backend call to a UsbRelayServer at host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._local = threading.local()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def call(self, name: str, *args: Any) -> Any:
        stream = self._stream()
        try:
            stream.write(json.dumps({"call": name, "args": to_wire(list(args))}) + "\n")
            stream.flush()
            line = stream.readline()
        except OSError as exc:
            self._local.stream = None
            raise usb.core.USBError(f"relay: {exc}", errno=errno.ENODEV) from exc
        if not line:
            self._local.stream = None
            raise usb.core.USBError("relay closed the connection", errno=errno.ENODEV)
        answer = json.loads(line)
        if "error" in answer:
            raise error_from_wire(answer["error"])
        return answer

    def _stream(self) -> Any:
        stream = getattr(self._local, "stream", None)
        if stream is None:
            try:
                sock = socket.create_connection(self.address, timeout=SOCKET_TIMEOUT_S)
            except OSError as exc:
                raise usb.core.USBError(f"relay unreachable: {exc}", errno=errno.ENODEV) from exc
            with self._lock:
                self._sockets.append(sock)
            stream = self._local.stream = sock.makefile("rw", encoding="ascii")
        return stream

    def _simple(self, name: str, *args: Any) -> Any:
        return from_wire(self.call(name, *args)["result"])

    def _into(self, name: str, buff: array.array[int], *args: Any) -> int:
        answer = self.call(name, *args, {"buffer": len(buff)})
        filled = bytes.fromhex(answer.get("filled", ""))
        buff[: len(filled)] = array.array("B", filled)
        return int(answer["result"])

    # --- IBackend ------------------------------------------------------------

    def enumerate_devices(self) -> Any:
        return self._simple("enumerate_devices")

    def get_device_descriptor(self, dev: Any) -> Any:
        return self._simple("get_device_descriptor", dev)

    def get_configuration_descriptor(self, dev: Any, config: int) -> Any:
        return self._simple("get_configuration_descriptor", dev, config)

    def get_interface_descriptor(self, dev: Any, intf: int, alt: int, config: int) -> Any:
        return self._simple("get_interface_descriptor", dev, intf, alt, config)

    def get_endpoint_descriptor(self, dev: Any, ep: int, intf: int, alt: int,
                                config: int) -> Any:
        return self._simple("get_endpoint_descriptor", dev, ep, intf, alt, config)

    def open_device(self, dev: Any) -> Any:
        return self._simple("open_device", dev)

    def close_device(self, dev_handle: Any) -> None:
        self._simple("close_device", dev_handle)

    def set_configuration(self, dev_handle: Any, config_value: int) -> None:
        self._simple("set_configuration", dev_handle, config_value)

    def get_configuration(self, dev_handle: Any) -> Any:
        return self._simple("get_configuration", dev_handle)

    def set_interface_altsetting(self, dev_handle: Any, intf: int, altsetting: int) -> None:
        self._simple("set_interface_altsetting", dev_handle, intf, altsetting)

    def claim_interface(self, dev_handle: Any, intf: int) -> None:
        self._simple("claim_interface", dev_handle, intf)

    def release_interface(self, dev_handle: Any, intf: int) -> None:
        self._simple("release_interface", dev_handle, intf)

    def bulk_write(self, dev_handle: Any, ep: int, intf: int, data: Any, timeout: int) -> Any:
        return self._simple("bulk_write", dev_handle, ep, intf, data, timeout)

    def bulk_read(self, dev_handle: Any, ep: int, intf: int, buff: Any, timeout: int) -> int:
        return self._into("bulk_read", buff, dev_handle, ep, intf, timeout)

    def ctrl_transfer(self, dev_handle: Any, bmRequestType: int, bRequest: int,
                      wValue: int, wIndex: int, data: Any, timeout: int) -> Any:
        if bmRequestType & 0x80:  # device-to-host: fill the caller's buffer
            return self._into("ctrl_transfer", data, dev_handle, bmRequestType, bRequest,
                              wValue, wIndex, timeout)
        return self._simple("ctrl_transfer", dev_handle, bmRequestType, bRequest,
                            wValue, wIndex, data, timeout)

    def clear_halt(self, dev_handle: Any, ep: int) -> None:
        self._simple("clear_halt", dev_handle, ep)

    def reset_device(self, dev_handle: Any) -> None:
        self._simple("reset_device", dev_handle)

    def is_kernel_driver_active(self, dev_handle: Any, intf: int) -> Any:
        return self._simple("is_kernel_driver_active", dev_handle, intf)

    def detach_kernel_driver(self, dev_handle: Any, intf: int) -> None:
        self._simple("detach_kernel_driver", dev_handle, intf)

    def attach_kernel_driver(self, dev_handle: Any, intf: int) -> None:
        self._simple("attach_kernel_driver", dev_handle, intf)
