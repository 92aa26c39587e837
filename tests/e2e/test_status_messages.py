"""Retained status on the broker: the gateway's birth and death, and each
terminal's online/offline, signed like every other payload."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt

from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.daemon import Gateway
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.e2e.harness import BRANCH, TCP_PROFILE, gateway_config, topic_prefix


async def retained(port: int, topic: str, want: dict[str, str]) -> dict[str, Any]:
    """The first message on `topic` (retained or new) whose fields match `want`."""
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(20):
            async for message in client.messages:
                payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                if all(payload.get(key) == value for key, value in want.items()):
                    return dict(payload)
    raise AssertionError("unreachable")


async def test_birth_terminal_online_then_offline_and_death_are_retained(
        tmp_path: Path) -> None:
    port = shared_broker_port()
    config = gateway_config(tmp_path, port)
    prefix = f"{topic_prefix(tmp_path)}/{BRANCH}"
    gateway, stop = Gateway(config), asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    try:
        await gateway.ready.wait()
        birth = await retained(port, f"{prefix}/gateway/status", {"state": "online"})
        transport = await connect_tcp("127.0.0.1", gateway.listener_ports[0])
        async with TerminalSimulator(TCP_PROFILE, transport, "S0000001", "M00000000000001",
                                     demo_cards(), response_timeout_s=5.0) as terminal:
            assert (await terminal.purchase(demo.VISA_OK, 5_00)).approved
            online = await retained(port, f"{prefix}/S0000001/status", {"state": "online"})
        offline = await retained(port, f"{prefix}/S0000001/status", {"state": "offline"})
    finally:
        stop.set()
        await run
    death = await retained(port, f"{prefix}/gateway/status", {"state": "offline"})
    for payload in (birth, online, offline, death):
        assert payload["gateway_id"] == config.gateway_id and len(payload["signature"]) == 88
    assert online["schema"] == "terminal-status.v1" and online["profile"] == "iso87-ascii"
