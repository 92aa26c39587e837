"""Attacks on `pos/v1/{branch}/cmd` against a real `posgw run` and a real broker
(issue 17, findings 1, 5 and 7): whoever can publish on the broker cannot
steer the gateway, fill its disk or its log, or replay what the center signed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from posgw.protocols import contract
from posgw.protocols.canonical_json import canonical_json
from posgw.sandbox.ports import free_port
from tests.brokers import private_mosquitto, shared_broker_port
from tests.e2e.harness import config_table, write_toml
from tests.posgw_script import POSGW
from tests.security.command_daemon import (
    attacker,
    center_key_table,
    command,
    frozen_case,
    posgw_run,
    sells,
    signed,
    until_listening,
)


def test_without_the_center_key_the_gateway_refuses_to_start(tmp_path: Path) -> None:
    table = config_table(tmp_path, shared_broker_port())
    del table["keys"]["center_public_key"]  # as deploy/gateway.example.toml had it
    config = write_toml(tmp_path / "gw.toml", table)
    ran = subprocess.run([POSGW, "run", "-c", str(config)], capture_output=True, text=True,
                         timeout=30)
    assert ran.returncode == 2
    [line] = ran.stderr.strip().splitlines()
    assert f"{config}: keys.center_public_key: required" in line
    assert "insecure_obey_unsigned" in line and "PUBACK" in line


async def test_a_forged_unsigned_release_of_a_frozen_case_changes_nothing(
        tmp_path: Path) -> None:
    with posgw_run(tmp_path, center_key_table(tmp_path, shared_broker_port())) as gateway:
        case_id = await frozen_case(gateway, "F0000001")
        async with attacker(gateway) as mallory:
            await until_listening(tmp_path, mallory)
            forged = command(contract.RELEASE, case_id=case_id)
            await mallory.publish(forged)
            # A signed ping after it: commands are handled in order, so once
            # the ping is answered the forged release has been dealt with.
            await until_listening(tmp_path, mallory)
            assert await mallory.reply(forged["command_id"], timeout_s=1.0) is None
        assert [case.status for case in gateway.cases()] == ["open"]
        assert gateway.tx_statuses("F0000001") == ["settled", "settled", "frozen"]
        assert forged["command_id"] not in {r["command_id"] for r in gateway.reply_rows()}


async def test_a_forged_unsigned_decommission_is_not_obeyed(tmp_path: Path) -> None:
    with posgw_run(tmp_path, center_key_table(tmp_path, shared_broker_port())) as gateway:
        assert await sells(gateway, "D0000001") == "00"
        async with attacker(gateway) as mallory:
            await until_listening(tmp_path, mallory)
            forged = command(contract.DECOMMISSION, terminal_id="D0000001")
            await mallory.publish(forged)
            await until_listening(tmp_path, mallory)
        assert await sells(gateway, "D0000001", 13_00) == "00"
        assert forged["command_id"] not in {r["command_id"] for r in gateway.reply_rows()}


async def test_a_500_kb_command_id_is_neither_stored_nor_logged(tmp_path: Path) -> None:
    with posgw_run(tmp_path, center_key_table(tmp_path, shared_broker_port())) as gateway:
        async with attacker(gateway) as mallory:
            await until_listening(tmp_path, mallory)
            huge = command(contract.PING)
            huge["command_id"] = "X" * 500_000
            # Signed, as the center's key would: the schema still bounds it.
            await mallory.publish(signed(tmp_path, huge))
            await until_listening(tmp_path, mallory)
        assert all("X" * 65 not in str(reply) for reply in gateway.reply_rows())
        lines = gateway.log_lines()
        assert max(len(line) for line in lines) < 400
        assert any("command refused" in line and "too large" in line for line in lines)


async def test_a_signed_command_from_2019_is_refused_as_stale(tmp_path: Path) -> None:
    with posgw_run(tmp_path, center_key_table(tmp_path, shared_broker_port())) as gateway:
        case_id = await frozen_case(gateway, "S0000019")
        async with attacker(gateway) as mallory:
            await until_listening(tmp_path, mallory)
            old = signed(tmp_path, command(contract.RETURN_TO_CARD, case_id=case_id,
                                           issued_at=datetime(2019, 3, 1, tzinfo=UTC)))
            reply = await mallory.ask(old)
        assert reply["outcome"] == "rejected" and "stale" in reply["detail"]
        assert [case.status for case in gateway.cases()] == ["open"]
        assert "refund" not in gateway.tx_statuses("S0000019")


async def test_a_command_from_the_future_is_refused(tmp_path: Path) -> None:
    with posgw_run(tmp_path, center_key_table(tmp_path, shared_broker_port())) as gateway:
        async with attacker(gateway) as mallory:
            await until_listening(tmp_path, mallory)
            ahead = signed(tmp_path, command(contract.DECOMMISSION, terminal_id="Z0000001",
                                             issued_at=datetime(2031, 1, 1, tzinfo=UTC)))
            reply = await mallory.ask(ahead)
        assert reply["outcome"] == "rejected" and "future" in reply["detail"]


async def test_a_replayed_signed_release_is_answered_without_acting_again(
        tmp_path: Path) -> None:
    with posgw_run(tmp_path, center_key_table(tmp_path, shared_broker_port())) as gateway:
        case_id = await frozen_case(gateway, "R0000001")
        async with attacker(gateway) as mallory:
            await until_listening(tmp_path, mallory)
            release = signed(tmp_path, command(contract.RELEASE, case_id=case_id))
            first = await mallory.ask(release)
            assert first["outcome"] == "done"
            log_before = len(gateway.log_lines())
            await mallory.publish(release)  # captured on the broker, sent again
            await until_listening(tmp_path, mallory)
        replies = [r for r in gateway.reply_rows() if r["command_id"] == release["command_id"]]
        assert len(replies) == 2
        assert replies[1]["outcome"] == "done" and "already executed" in replies[1]["detail"]
        assert not any("was already released" in line
                       for line in gateway.log_lines()[log_before:])
        assert gateway.tx_statuses("R0000001") == ["settled", "settled", "frozen", "settled"]


async def test_an_unsigned_ping_flood_stores_nothing_and_logs_a_few_lines(
        tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    with private_mosquitto(tmp_path / "broker") as broker:
        table = center_key_table(tmp_path, broker.port, sqlite_synchronous="NORMAL")
        with posgw_run(tmp_path, table) as gateway:
            async with attacker(gateway) as mallory:
                await until_listening(tmp_path, mallory)
                log_before = len(gateway.log_lines())
                pings = [command(contract.PING) for _ in range(20_000)]
                await mallory.flood([canonical_json(ping) for ping in pings])
                # Answered only once the 20,000 before it were dealt with.
                await mallory.ask(signed(tmp_path, command(contract.PING)), timeout_s=300)
            logged = gateway.log_lines()[log_before:]
            assert len(logged) < 50, f"{len(logged)} log lines"
            flood = {ping["command_id"] for ping in pings}
            assert not [r for r in gateway.reply_rows() if r["command_id"] in flood]


def test_obeying_unsigned_commands_is_said_in_log_status_and_metrics(tmp_path: Path) -> None:
    table = config_table(tmp_path, shared_broker_port(), listen_port=free_port())
    del table["keys"]["center_public_key"]
    table["commands"] = {"insecure_obey_unsigned": True}
    metrics_port = free_port()
    table["metrics"] = {"bind": f"127.0.0.1:{metrics_port}"}
    with posgw_run(tmp_path, table) as gateway:
        async def ping() -> dict[str, object]:
            async with attacker(gateway) as anyone:
                for _ in range(30):
                    unsigned = command(contract.PING)
                    await anyone.publish(unsigned)
                    reply = await anyone.reply(unsigned["command_id"], timeout_s=2.0)
                    if reply is not None:
                        return reply
            raise AssertionError("no reply to an unsigned ping")

        assert asyncio.run(ping())["outcome"] == "done"
        assert any("UNSIGNED" in line and "command" in line and "ping" in line
                   for line in gateway.log_lines())
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as page:
            assert "posgw_commands_unsigned_obeyed 1.0" in page.read().decode()
        status = subprocess.run([POSGW, "status", "-c", str(gateway.config), "--json"],
                                capture_output=True, text=True, timeout=60)
        assert json.loads(status.stdout)["commands"]["unsigned_obeyed"] is True
        shown = subprocess.run([POSGW, "status", "-c", str(gateway.config)],
                               capture_output=True, text=True, timeout=60)
        assert "UNSIGNED" in shown.stdout
