"""The acquirer host over ISO 8583/TCP: one connection, many requests in flight.

Requests from all terminals share one connection, so the terminal's STAN
cannot identify a response: each upstream request gets the gateway's own
STAN (field 11), and the response is matched on it. The connection is kept
by one reconnect loop with the shared Backoff; while it is down,
`authorize` fails at once with UpstreamUnavailable instead of queueing
behind a dead link (a terminal waits 60 s at most; the pipeline must answer
and queue a reversal advice well before).

The PIN block travels as the terminal sent it: translating it from the
terminal key to the acquirer zone key is an HSM's job, outside this
gateway (the simulators share one test key).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from posgw.drivers.backoff import Backoff
from posgw.drivers.base import LinkClosed, Transport
from posgw.drivers.channel import FramedChannel
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.authorize.base import Authorization, UpstreamUnavailable
from posgw.protocols.framing import build_link
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import Iso8583Error
from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import Transaction, category_for, response_code_for
from posgw.protocols.profile import Profile

log = logging.getLogger(__name__)
Connector = Callable[[str, int], Awaitable[Transport]]
_STAN_LIMIT = 999_999  # field 11 is n6; 000000 is not used
#: Recent terminal->upstream STAN pairs kept for rewriting reversals' field 90.
_REMEMBERED_STANS = 100_000
#: What a reversal advice carries: amounts and references, never card data
#: (the acquirer matches it on field 90; DESIGN rule 5 keeps the PAN out of
#: the store-and-forward queue).
_ADVICE_FIELDS = frozenset({3, 4, 7, 11, 32, 41, 42, 49})


class Iso8583Upstream:
    """`async with Iso8583Upstream(...) as upstream: await upstream.authorize(tx, msg)`."""

    def __init__(self, host: str, port: int, profile: Profile, *, timeout_s: float,
                 backoff: Backoff | None = None, connect: Connector | None = None) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.profile = profile
        self.codec = Codec(profile.iso8583)
        self._backoff = backoff or Backoff()
        self._connect = connect or (lambda h, p: connect_tcp(h, p))
        self._stans = itertools.cycle(range(1, _STAN_LIMIT + 1))
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._sent_stans: collections.OrderedDict[tuple[str, str], str] = \
            collections.OrderedDict()
        self._channel: FramedChannel | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._channel is not None

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def __aenter__(self) -> Iso8583Upstream:
        self._task = asyncio.create_task(self._keep_connected(), name="upstream-connection")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_pending("gateway shutting down")

    async def authorize(self, transaction: Transaction, request: Message) -> Authorization:
        response = await self.exchange(request)
        raw_code = response.text(39)
        category = category_for(raw_code)
        code = raw_code if len(raw_code) == (2 if transaction.version == 1987 else 3) \
            else response_code_for(category, transaction.version)
        return Authorization(category, code, response.text(38) or None,
                             response.text(37) or None)

    async def exchange(self, request: Message, *, from_terminal: bool = True) -> Message:
        """Send `request` under a fresh upstream STAN; return the matching response.

        `from_terminal`: field 90 of a reversal names the terminal's STAN and
        is rewritten to the upstream STAN the original went out under. An
        advice the gateway built itself (`from_terminal=False`) already
        names it.
        """
        channel = self._channel
        if channel is None:
            raise UpstreamUnavailable("not connected to the acquirer")
        stan = f"{next(self._stans):06d}"
        upstream = self._upstream_request(request, stan, rewrite_original=from_terminal)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[stan] = future
        sent = False
        try:
            sent = await channel.send(self.codec.encode(upstream))
            if not sent:
                raise UpstreamUnavailable("acquirer did not acknowledge the request")
            self._remember_stan(request, stan)
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise UpstreamUnavailable(f"no response within {self.timeout_s:g} s",
                                      self._reversal_for(upstream)) from None
        except UpstreamUnavailable as exc:
            if sent and exc.reversal is None:  # the link dropped after the request left
                raise UpstreamUnavailable(str(exc), self._reversal_for(upstream)) from None
            raise
        except Iso8583Error as exc:
            raise UpstreamUnavailable(f"request does not fit the upstream profile: {exc}") from None
        finally:
            self._pending.pop(stan, None)

    def _upstream_request(self, request: Message, stan: str, *,
                          rewrite_original: bool) -> Message:
        """The terminal's fields the upstream dialect carries, under our STAN."""
        fields = {n: v for n, v in request.fields.items() if n in self.codec.fields}
        fields[11] = stan
        original = fields.get(90)
        if rewrite_original and request.mti[1] == "4" and isinstance(original, str):
            theirs = self._sent_stans.get((request.text(41), original[4:10]))
            if theirs is not None:
                fields[90] = original[:4] + theirs + original[10:]
        return Message(request.mti, fields)

    def _remember_stan(self, request: Message, stan: str) -> None:
        """Terminal STAN -> upstream STAN, so the terminal's reversal can name ours."""
        if request.mti[1] == "4":
            return
        self._sent_stans[(request.text(41), request.text(11))] = stan
        if len(self._sent_stans) > _REMEMBERED_STANS:
            self._sent_stans.popitem(last=False)

    def _reversal_for(self, sent: Message) -> Message | None:
        """The 0420 advice undoing `sent` (a 1987 financial or authorization request)."""
        if sent.mti[0] != "0" or sent.mti[1] not in "12" or 90 not in self.codec.fields:
            return None
        fields = {n: v for n, v in sent.fields.items() if n in _ADVICE_FIELDS}
        fields[90] = (sent.mti + sent.text(11) + sent.text(7, "0" * 10)
                      + sent.text(32, "").zfill(11)[-11:] + "0" * 11)
        return Message("0420", fields)

    async def _keep_connected(self) -> None:
        while True:
            try:
                transport = await self._connect(self.host, self.port)
            except OSError as exc:
                log.warning("acquirer %s:%s unreachable: %s", self.host, self.port, exc)
            else:
                self._backoff.reset()
                await self._serve(transport)
            await asyncio.sleep(self._backoff.next_delay())

    async def _serve(self, transport: Transport) -> None:
        async with FramedChannel(transport, build_link(self.profile.framing)) as channel:
            self._channel = channel
            self._connected.set()
            log.info("connected to acquirer %s:%s", self.host, self.port)
            try:
                while True:
                    self._route((await channel.receive()).message)
            except LinkClosed:
                log.warning("acquirer connection closed")
            finally:
                self._channel = None
                self._connected.clear()
                self._fail_pending("acquirer connection lost")

    def _route(self, data: bytes) -> None:
        try:
            response = self.codec.decode(data)
        except Iso8583Error as exc:
            log.warning("undecodable message from acquirer (%d bytes): %s", len(data), exc)
            return
        future = self._pending.get(response.text(11))
        if future is None or future.done():
            log.warning("acquirer response %s for unknown STAN dropped", response.mti)
            return
        future.set_result(response)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(UpstreamUnavailable(reason))
