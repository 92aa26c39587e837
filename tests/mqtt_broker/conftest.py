"""An embedded broker on a free loopback port for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from posgw.sandbox.mqtt_broker import EmbeddedBroker


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as running:
        yield running
