"""Loopback ports for a stack on one machine: pick a free one, see whether one accepts."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"
#: Long enough for a loaded loopback to answer, short enough to poll with.
CONNECT_TIMEOUT_S = 0.2


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; free until someone takes it)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts a TCP connection on `host`:`port` right now."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False
