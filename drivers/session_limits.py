"""Bounds on a listener's TCP sessions, and a log line that cannot flood.

A listener on a branch LAN is reachable by every device there. Without
bounds, sockets held open and never written to (or written to a byte at a
time) use up the daemon's file descriptors and its terminals get no answer
at all. Each bound below is sized for a branch: tens of terminals, each on
one connection (or one per transaction).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from posgw.drivers.clock import SYSTEM_CLOCK, Clock

#: Connections one listener holds at once: a branch's tens of terminals,
#: each with one connection, and room for reconnects overlapping old sockets.
DEFAULT_MAX_CONNECTIONS = 64
#: From one source address: a terminal has one connection (two while it
#: reconnects); an ECR PC driving a few terminals shares one address.
DEFAULT_MAX_PER_ADDRESS = 8
#: No byte either way for this long and the connection is closed. Longer than
#: a terminal's echo-test interval (commonly 1-5 min) and any upstream wait;
#: a terminal that connects per transaction never gets near it.
DEFAULT_IDLE_TIMEOUT_S = 300.0
#: Inside a message, no byte for this long: the peer stalled. On a LAN a
#: message's TCP segments arrive within milliseconds; this covers retransmits.
DEFAULT_INTER_BYTE_TIMEOUT_S = 5.0
#: A message begun must be complete this soon (a slowloris sends a length
#: header, then a byte a second, and never trips the inter-byte timeout).
DEFAULT_MESSAGE_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class SessionLimits:
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    inter_byte_timeout_s: float = DEFAULT_INTER_BYTE_TIMEOUT_S
    message_timeout_s: float = DEFAULT_MESSAGE_TIMEOUT_S


class ThrottledLog:
    """A warning logged at most once per `interval_s`, with how often it happened.

    The first occurrence is logged at once; later ones within the interval
    are counted and reported with the next line ("... (412 more since)").
    An accept() failing at EMFILE happens thousands of times a second: a
    traceback each would fill the disk while helping nobody.
    """

    def __init__(self, logger: logging.Logger, interval_s: float,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._clock = clock
        self._next_at = float("-inf")
        self.suppressed = 0
        self.total = 0

    def warning(self, message: str, *args: object) -> None:
        self.total += 1
        now = self._clock.monotonic()
        if now < self._next_at:
            self.suppressed += 1
            return
        if self.suppressed:
            message += " (%d more since the last such line)"
            args = (*args, self.suppressed)
        self._log.warning(message, *args)
        self.suppressed = 0
        self._next_at = now + self._interval_s
