"""The daemon with the center's key: a sale stays in the outbox until the
center confirms it, a silent center is reported (status row, metric flag,
retained gateway status), and a confirmation ends both."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
from sqlalchemy import select

from posgw.center.command_key import PRIVATE_FILE, generate_command_key, load_command_key
from posgw.center.command_key import sign_command as center_sign
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.config import parse_config
from posgw.gateway.store import GatewayRuntime, LedgerEntry, Store
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import confirm_topic, confirmation, gateway_status_topic
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    TCP_PROFILE,
    config_table,
    connected_gateway,
    topic_prefix,
)


async def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)  # polling state with a deadline


async def retained_status(port: int, prefix: str) -> dict:
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(gateway_status_topic(prefix, BRANCH), qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return json.loads(message.payload)
    raise AssertionError("no retained gateway status")


async def test_a_silent_center_is_reported_until_it_confirms(tmp_path: Path) -> None:
    port, prefix = shared_broker_port(), topic_prefix(tmp_path)
    public = generate_command_key(tmp_path / "hq")
    center_key = load_command_key(tmp_path / "hq" / PRIVATE_FILE)
    table = config_table(tmp_path, port)
    table["keys"]["center_public_key"] = str(public)
    table["forward"] = {"confirm_timeout_s": 60, "center_silent_after_s": 1}
    config = parse_config(table, "(e2e)")
    async with connected_gateway(config) as gateway:
        forwarder = gateway.forwarder
        assert forwarder is not None and forwarder.confirming
        birth = await retained_status(port, prefix)
        assert birth["state"] == "online" and birth["outbox"] == {
            "pending": 0, "published_unconfirmed": 0, "oldest_unconfirmed_age_s": None,
            "center_silent": False}
        transport = await connect_tcp("127.0.0.1", gateway.listener_ports[0])
        async with TerminalSimulator(TCP_PROFILE, transport, "S0000001", "M00000000000001",
                                     demo_cards(), response_timeout_s=5.0) as terminal:
            assert (await terminal.purchase(demo.VISA_OK, 10_00)).approved
        with Store(config.database) as store:
            await eventually(lambda: forwarder.center_silent)
            # The heartbeat writes it just after it sets center_silent: wait for the write.
            await eventually(lambda: (store.runtime() or GatewayRuntime()).center_silent_since
                             is not None)
            runtime = store.runtime()
            assert runtime is not None
            with store.session() as session:
                event_id = session.scalars(select(LedgerEntry.event_id)).one()
            payload = center_sign(confirmation(
                BRANCH, GATEWAY_ID, stored=[event_id], quarantined={},
                confirm_id=uuid.uuid4().hex, issued_at=datetime.now(UTC)), center_key)
            async with aiomqtt.Client("127.0.0.1", port,
                                      protocol=aiomqtt.ProtocolVersion.V5) as client:
                await client.publish(confirm_topic(prefix, BRANCH, GATEWAY_ID),
                                     canonical_json(payload), qos=1)
            await eventually(lambda: store.undelivered_for("S0000001") == 0
                             and not forwarder.center_silent)
            await eventually(lambda: (store.runtime() or runtime).center_silent_since is None)
