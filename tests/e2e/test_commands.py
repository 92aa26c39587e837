"""Center commands reach the running gateway and come back answered:
ping, and decommissioning a terminal (it drains, then is retired)."""

from __future__ import annotations

from pathlib import Path

from posgw.center.commands import build_command, send_command
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.mqtt import MqttConfig
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from posgw.gateway.store import Store
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.drivers.helpers import wait_until
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    TCP_PROFILE,
    center_signed,
    gateway_and_center,
    gateway_config,
    standin,
    topic_prefix,
)


def terminal_state(database: str, terminal_id: str) -> str | None:
    with Store(database) as store:
        states = {record.terminal_id: record.state for record in store.terminals()}
    return states.get(terminal_id)


async def test_ping_and_decommission_over_the_cmd_topic(tmp_path: Path) -> None:
    port = shared_broker_port()
    config = gateway_config(tmp_path, port, upstream=standin(refunds_for="D0000001"))
    center = MqttConfig("127.0.0.1", port, topic_prefix=topic_prefix(tmp_path))
    verifier = SignatureVerifier(
        {GATEWAY_ID: load_public_key(tmp_path / "keys" / PUBLIC_KEY_FILE)})

    async def command(action: str, *args: str) -> dict[str, object] | None:
        signed = center_signed(tmp_path, build_command(BRANCH, action, args))
        return await send_command(center, signed, wait_reply_s=15, verifier=verifier)

    # A center that confirms: the terminal retires once the center holds its events.
    async with gateway_and_center(config, tmp_path, port) as (gateway, _):
        assert gateway.forwarder is not None
        await gateway.forwarder.connected.wait()
        ping = await command("ping")
        assert ping is not None and ping["outcome"] == "done"
        transport = await connect_tcp("127.0.0.1", gateway.listener_ports[0])
        async with TerminalSimulator(TCP_PROFILE, transport, "D0000001", "M00000000000001",
                                     demo_cards(), response_timeout_s=5.0) as terminal:
            first = await terminal.purchase(demo.VISA_OK, 10_00)
            assert first.approved
            unknown = await command("decommission", "D0000099")
            assert unknown is not None and unknown["outcome"] == "not_found"
            reply = await command("decommission", "D0000001")
            assert reply is not None and reply["outcome"] == "done"
            assert (await terminal.purchase(demo.VISA_OK, 11_00)).response_code == "58"
            refund = await terminal.refund(demo.VISA_OK, 10_00)  # undoing its own sale
            assert refund.approved
        await wait_until(lambda: terminal_state(config.database, "D0000001")
                         == "decommissioned", 20)
