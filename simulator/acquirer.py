"""The acquirer-host simulator on the wire: ISO 8583 over TCP.

`AcquirerServer(profile, host)` listens with `TcpServer`, runs one
`FramedChannel` per connection with the profile's framing (a 2-byte length
header for the iso87 profiles) and answers every request through
`AcquirerHost`. Replies reuse the request's envelope with the TPDU swapped.

Latency and faults make it a useful peer for timeouts and reconnects:
`latency_s` delays every answer; `inject(Fault(...))` queues one fault for
the next request of a given MTI: drop the response (the request *is*
processed, which is what reversals exist for), delay it, or close the
connection without answering.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from posgw.drivers.base import LinkClosed, Transport
from posgw.drivers.channel import FramedChannel
from posgw.drivers.tcp_link import TcpServer
from posgw.protocols.framing import MessageReceived, build_link
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import Iso8583Error
from posgw.protocols.profile import Profile
from posgw.simulator.acquirer_host import AcquirerHost

log = logging.getLogger(__name__)


class FaultKind(StrEnum):
    DROP_RESPONSE = "drop-response"
    DELAY = "delay"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault for the next request whose MTI is `mti` (None: any)."""

    kind: FaultKind
    mti: str | None = None
    delay_s: float = 0.0


class AcquirerServer:
    """`async with AcquirerServer(profile, host) as server:` then dial `server.port`."""

    def __init__(self, profile: Profile, host: AcquirerHost, *, bind: str = "127.0.0.1",
                 port: int = 0, latency_s: float = 0.0) -> None:
        self.profile = profile
        self.host = host
        self.codec = Codec(profile.iso8583)
        self.latency_s = latency_s
        self.requests_seen = 0
        self._faults: deque[Fault] = deque()
        self._server = TcpServer(bind, port, self._session)

    @property
    def port(self) -> int:
        return self._server.port

    def inject(self, fault: Fault) -> None:
        self._faults.append(fault)

    async def __aenter__(self) -> AcquirerServer:
        await self._server.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._server.__aexit__(exc_type, exc, tb)

    async def _session(self, transport: Transport) -> None:
        link = build_link(self.profile.framing)
        async with FramedChannel(transport, link) as channel:
            while True:
                try:
                    received = await channel.receive()
                except LinkClosed:
                    return
                if not await self._answer(channel, received):
                    return

    async def _answer(self, channel: FramedChannel, received: MessageReceived) -> bool:
        """Answer one request; False when a fault closed the connection."""
        try:
            request = self.codec.decode(received.message)
        except Iso8583Error as exc:
            digest = hashlib.sha256(received.message).hexdigest()[:12]
            log.warning("undecodable request (%d bytes, sha256 %s): %s",
                        len(received.message), digest, exc)
            return True
        self.requests_seen += 1
        fault = self._take_fault(request.mti)
        response = self.host.handle(request)
        if fault is not None and fault.kind is FaultKind.CLOSE:
            return False
        if response is None or (fault is not None and fault.kind is FaultKind.DROP_RESPONSE):
            return True
        delay = self.latency_s + (fault.delay_s if fault is not None else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)  # simulated host latency, not synchronisation
        await channel.send(self.codec.encode(response), received.envelope.reply())
        return True

    def _take_fault(self, mti: str) -> Fault | None:
        for fault in self._faults:
            if fault.mti is None or fault.mti == mti:
                self._faults.remove(fault)
                return fault
        return None
