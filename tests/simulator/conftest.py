"""Run simulator pieces against the acquirer simulator on loopback TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.profiles import load_profile
from posgw.simulator.acquirer import AcquirerServer
from posgw.simulator.acquirer_host import AcquirerHost
from posgw.simulator.cards import demo_cards
from posgw.simulator.scenario_kit import ScenarioContext
from posgw.simulator.shifted_clock import ShiftedClock

#: Short enough to keep the no-response test quick, long enough for a loaded CI box.
TEST_RESPONSE_TIMEOUT_S = 0.5


@asynccontextmanager
async def acquirer_context(profile_name: str = "iso87-binary") -> AsyncIterator[
        tuple[ScenarioContext, AcquirerServer]]:
    """A fresh acquirer simulator and a scenario context dialling it."""
    profile = load_profile(profile_name)
    clock = ShiftedClock()
    host = AcquirerHost(profile.iso8583, demo_cards(), clock=clock)
    async with AcquirerServer(profile, host) as server:

        async def connect():  # type: ignore[no-untyped-def]
            return await connect_tcp("127.0.0.1", server.port)

        ctx = ScenarioContext(profile, connect, clock=clock, acquirer=host,
                              response_timeout_s=TEST_RESPONSE_TIMEOUT_S)
        yield ctx, server
