"""Stand-in decisions, and the ISO 8583 upstream client against a loopback acquirer peer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from posgw.drivers.backoff import Backoff
from posgw.drivers.base import LinkClosed
from posgw.drivers.channel import FramedChannel
from posgw.drivers.tcp_link import TcpServer, TcpTransport
from posgw.gateway.authorize import Iso8583Upstream, StandInAuthorizer, UpstreamUnavailable
from posgw.gateway.profiles import load_profile
from posgw.protocols.framing import build_link
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import ResponseCategory, build_response, normalize

PROFILE = load_profile("iso87-binary")
CODEC = Codec(PROFILE.iso8583)


def purchase(amount: int, stan: str = "000123", mti: str = "0200") -> Message:
    return Message(mti, {2: "4761739001010010", 3: "000000", 4: f"{amount:012d}",
                         7: "1123101530", 11: stan, 41: "T0000001", 42: "M00000000000001",
                         49: "978"})


def test_standin_approves_up_to_the_floor_limit_with_a_local_auth_code() -> None:
    decision = StandInAuthorizer(floor_limit=500_000).decide(normalize(purchase(500_000)))
    assert decision.approved and decision.response_code == "00"
    assert decision.auth_code is not None and decision.auth_code.startswith("S")


def test_standin_declines_above_the_floor_limit_as_over_amount_limit() -> None:
    decision = StandInAuthorizer(floor_limit=500_000).decide(normalize(purchase(500_001)))
    assert decision.response is ResponseCategory.EXCEEDS_AMOUNT_LIMIT
    assert decision.response_code == "61"
    assert decision.auth_code is None


def refund(amount: int) -> Message:
    return Message("0200", {**purchase(amount).fields, 3: "200000"})


def test_standin_refuses_a_refund_to_a_terminal_without_a_refund_limit() -> None:
    decision = StandInAuthorizer(floor_limit=500_000).decide(normalize(refund(1)))
    assert decision.response is ResponseCategory.NOT_PERMITTED_TO_TERMINAL
    assert (decision.response_code, decision.auth_code) == ("58", None)


def test_standin_refunds_up_to_the_terminals_own_limit_only() -> None:
    authorizer = StandInAuthorizer(floor_limit=500_000, refund_limits={"T0000001": 20_000})
    assert authorizer.decide(normalize(refund(20_000))).response_code == "00"
    assert authorizer.decide(normalize(refund(20_001))).response_code == "61"


def test_standin_cannot_answer_a_balance_inquiry() -> None:
    inquiry = Message("0100", {3: "310000", 11: "000001", 41: "T0000001"})
    decision = StandInAuthorizer(floor_limit=500_000).decide(normalize(inquiry))
    assert decision.response_code == "91"


Responder = Callable[[Message], Message | None]


@asynccontextmanager
async def acquirer(respond: Responder) -> AsyncIterator[TcpServer]:
    """A loopback ISO 8583 peer: decodes each request and answers what `respond` returns."""

    async def serve(transport: TcpTransport) -> None:
        async with FramedChannel(transport, build_link(PROFILE.framing)) as channel:
            try:
                while True:
                    request = CODEC.decode((await channel.receive()).message)
                    answer = respond(request)
                    if answer is not None:
                        await channel.send(CODEC.encode(answer))
            except LinkClosed:
                return

    async with TcpServer("127.0.0.1", 0, serve) as server:
        yield server


def approve(request: Message) -> Message:
    return build_response(request, response_code="00", auth_code="A12345", rrn="632710000001")


async def test_upstream_approval_carries_auth_code_and_rrn() -> None:
    async with acquirer(approve) as server, Iso8583Upstream(
        "127.0.0.1", server.port, PROFILE, timeout_s=5) as upstream:
        await asyncio.wait_for(upstream.wait_connected(), 5)
        result = await upstream.authorize(normalize(purchase(1000)), purchase(1000))
    assert (result.response_code, result.auth_code, result.rrn) == ("00", "A12345",
                                                                    "632710000001")


async def test_upstream_matches_concurrent_responses_by_its_own_stan() -> None:
    seen: list[str] = []

    def echo_amount(request: Message) -> Message:
        seen.append(request.text(11))
        code = "00" if int(request.text(4)) % 2 == 0 else "51"
        return build_response(request, response_code=code)

    async with acquirer(echo_amount) as server, Iso8583Upstream(
        "127.0.0.1", server.port, PROFILE, timeout_s=5) as upstream:
        await asyncio.wait_for(upstream.wait_connected(), 5)
        # Every terminal uses STAN 000001: only the gateway's STAN can match them.
        requests = [purchase(amount, stan="000001") for amount in range(100, 120)]
        results = await asyncio.gather(*(upstream.authorize(normalize(r), r) for r in requests))
    assert [r.response_code for r in results] == ["00" if a % 2 == 0 else "51"
                                                  for a in range(100, 120)]
    assert len(set(seen)) == 20


async def test_silent_acquirer_gives_upstream_unavailable_after_the_timeout() -> None:
    async with acquirer(lambda request: None) as server, Iso8583Upstream(
        "127.0.0.1", server.port, PROFILE, timeout_s=0.3) as upstream:
        await asyncio.wait_for(upstream.wait_connected(), 5)
        with pytest.raises(UpstreamUnavailable, match=r"no response within 0\.3 s"):
            await upstream.authorize(normalize(purchase(1000)), purchase(1000))


async def test_unreachable_acquirer_fails_fast_instead_of_queueing() -> None:
    async with TcpServer("127.0.0.1", 0, lambda t: t.close()) as probe:
        port = probe.port  # a port that is free again once the probe closes
    async with Iso8583Upstream("127.0.0.1", port, PROFILE, timeout_s=5,
                               backoff=Backoff(base=0.01, cap=0.05)) as upstream:
        with pytest.raises(UpstreamUnavailable, match="not connected"):
            await upstream.authorize(normalize(purchase(1000)), purchase(1000))


async def test_upstream_reconnects_after_the_acquirer_drops_the_connection() -> None:
    drops = {"left": 1}

    def drop_first(request: Message) -> Message | None:
        if drops["left"]:
            drops["left"] -= 1
            raise LinkClosed  # leaves the serve loop: the server closes the socket
        return approve(request)

    async with acquirer(drop_first) as server, Iso8583Upstream(
        "127.0.0.1", server.port, PROFILE, timeout_s=5,
        backoff=Backoff(base=0.01, cap=0.05)) as upstream:
        await asyncio.wait_for(upstream.wait_connected(), 5)
        with pytest.raises(UpstreamUnavailable, match="connection lost"):
            await upstream.authorize(normalize(purchase(1000)), purchase(1000))
        await asyncio.wait_for(upstream.wait_connected(), 5)
        result = await upstream.authorize(normalize(purchase(1000)), purchase(1000))
    assert result.approved
