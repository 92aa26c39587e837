"""A real pseudo-terminal pair with pyserial on both ends, and a replug.

The master side is opened with pyserial itself (`/dev/ptmx` opened by
`serial.Serial` allocates a fresh pty), and the slave's name comes from
POSIX `grantpt`/`unlockpt`/`ptsname_r`: Python 3.11's `os` has no
`ptsname` (3.13 adds it), so libc is called through ctypes. The gateway
opens the slave path with pyserial as it would a /dev/ttyUSB0.

Replug: `PtyPair(link_path=...)` keeps a symlink at a stable path, the way
udev's /dev/serial/by-id links name a device whatever tty it gets.
`unplug()` closes the master (the slave's reader sees the hangup, so the
gateway gets LinkClosed) and removes the link; `replug()` allocates a new
pty and points the link at it.

The pair keeps one slave descriptor of its own open (never read): without
it, the master side fails with EIO whenever the gateway closes the slave to
reconnect, and bytes written before the gateway opens the slave would be
echoed back by the default cooked mode (it is switched to raw here).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import tty
from pathlib import Path
from types import TracebackType

import serial

from posgw.drivers.base import TerminalIdentity
from posgw.drivers.serial_link import SerialSettings, SerialTransport

PTMX = "/dev/ptmx"


def pty_supported() -> bool:
    """True where a pty pair can be allocated (Linux and most POSIX systems)."""
    return os.name == "posix" and os.path.exists(PTMX)


def slave_name(master_fd: int) -> str:
    """Unlock the slave of `master_fd` and return its path (/dev/pts/N)."""
    if sys.version_info >= (3, 13):  # os.grantpt and os.unlockpt are 3.13+
        os.grantpt(master_fd)
        os.unlockpt(master_fd)
        return str(os.ptsname(master_fd))
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buffer = ctypes.create_string_buffer(128)
    for call in (libc.grantpt(master_fd), libc.unlockpt(master_fd),
                 libc.ptsname_r(master_fd, buffer, len(buffer))):
        if call != 0:
            errno = ctypes.get_errno() or call
            raise OSError(errno, f"pty setup failed: {os.strerror(errno)}")
    return buffer.value.decode()


class PtyPair:
    """One simulated serial cable; see the module docstring."""

    def __init__(self, link_path: str | Path | None = None,
                 settings: SerialSettings | None = None) -> None:
        self.link_path = Path(link_path) if link_path is not None else None
        self.settings = settings or SerialSettings()
        self._master: serial.Serial | None = None
        self._transport: SerialTransport | None = None
        self._keepalive_fd: int | None = None
        self.slave_path = ""
        self._plug()

    @property
    def port(self) -> str:
        """What the gateway configures: the stable link, else the slave itself."""
        return str(self.link_path) if self.link_path is not None else self.slave_path

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def master_transport(self) -> SerialTransport:
        """The terminal's end of the cable (one per plug; call in the event loop)."""
        if self._master is None:
            raise RuntimeError("the pty is unplugged")
        if self._transport is None:
            identity = TerminalIdentity("serial", f"pty-master:{self.slave_path}")
            self._transport = SerialTransport(self._master, identity)
        return self._transport

    async def unplug(self) -> None:
        """Pull the cable: the gateway's reads end with LinkClosed; the link vanishes."""
        if self._transport is not None:
            await self._transport.close()  # stops its reader, closes the master
        elif self._master is not None:
            self._master.close()
        self._transport, self._master = None, None
        if self._keepalive_fd is not None:
            os.close(self._keepalive_fd)
            self._keepalive_fd = None
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    async def replug(self) -> None:
        """Plug a fresh pty in at the same `port`."""
        await self.unplug()
        self._plug()

    async def close(self) -> None:
        await self.unplug()

    async def __aenter__(self) -> PtyPair:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def _plug(self) -> None:
        master = serial.Serial(PTMX, timeout=None, **self.settings.pyserial_kwargs())
        try:
            self.slave_path = slave_name(master.fileno())
            self._keepalive_fd = os.open(self.slave_path, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(self._keepalive_fd)
        except BaseException:
            master.close()
            raise
        self._master = master
        if self.link_path is not None:
            temporary = self.link_path.with_name(self.link_path.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            temporary.symlink_to(self.slave_path)
            os.replace(temporary, self.link_path)  # atomic, like udev's link update
