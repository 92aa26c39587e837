"""A gateway given the center's public key obeys only signed commands: `posgw
center cmd` with `[center] command_key` is obeyed, a command anyone else
publishes on the broker gets no answer and changes nothing, and the
gateway's own `posgw cases` still works (it signs with the gateway's key)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from posgw.center.command_key import (
    PRIVATE_FILE,
    generate_command_key,
    load_command_key,
    sign_command,
)
from posgw.center.commands import build_command, send_command
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.mqtt import MqttConfig
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.config import load_config
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    TCP_PROFILE,
    center_toml,
    config_table,
    connected_gateway,
    topic_prefix,
    write_toml,
)
from tests.posgw_script import run_posgw


async def test_only_signed_commands_are_obeyed(tmp_path: Path) -> None:
    port = shared_broker_port()
    made = run_posgw("center", "command-key", str(tmp_path / "hq"))
    assert made.returncode == 0, made.stderr
    table = config_table(tmp_path, port)
    table["keys"]["center_public_key"] = str(tmp_path / "hq" / "command.pub")
    gateway_toml = write_toml(tmp_path / "gw.toml", table)
    center_config = center_toml(tmp_path, port,
                                command_key=str(tmp_path / "hq" / "command.key"))
    broker = MqttConfig("127.0.0.1", port, topic_prefix=topic_prefix(tmp_path))
    verifier = SignatureVerifier({GATEWAY_ID: load_public_key(tmp_path / "keys" /
                                                              PUBLIC_KEY_FILE)})

    async def published(command: dict[str, Any], wait_s: float = 15) -> dict[str, Any] | None:
        return await send_command(broker, command, wait_reply_s=wait_s, verifier=verifier)

    async with connected_gateway(load_config(gateway_toml)) as gateway:
        transport = await connect_tcp("127.0.0.1", gateway.listener_ports[0])
        async with TerminalSimulator(TCP_PROFILE, transport, "S0000001", "M00000000000001",
                                     demo_cards(), response_timeout_s=5.0) as terminal:
            assert (await terminal.purchase(demo.VISA_OK, 10_00)).approved
            unsigned = build_command(BRANCH, "decommission", ["S0000001"])
            assert await published(unsigned, wait_s=2) is None  # dropped, unanswered
            generate_command_key(tmp_path / "impostor")
            forged = sign_command(build_command(BRANCH, "decommission", ["S0000001"]),
                                  load_command_key(tmp_path / "impostor" / PRIVATE_FILE))
            assert await published(forged, wait_s=2) is None
            # Neither took effect: the terminal still sells.
            assert (await terminal.purchase(demo.VISA_OK, 11_00)).approved
            assert gateway.registry.state("S0000001") == "online"
            signed = await asyncio.to_thread(run_posgw, "center", "-c", str(center_config), "cmd",
                                             BRANCH, "decommission", "S0000001",
                                             "--wait-reply", "15")
            assert signed.returncode == 0, signed.stdout + signed.stderr
            assert json.loads(signed.stdout.splitlines()[-1])["outcome"] == "done"
            assert (await terminal.purchase(demo.VISA_OK, 12_00)).response_code == "58"
        # The gateway host's own operator command is signed with the gateway's key.
        local = await asyncio.to_thread(run_posgw, "cases", "release", "-c", str(gateway_toml),
                                        "NO-SUCH-CASE", "--wait", "15")
        assert "not_found" in local.stdout + local.stderr, local.stdout + local.stderr

