"""`posgw center query | totals | cmd`: answers, exit statuses, the command contract."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from click.testing import CliRunner, Result

from posgw.center.command_key import PRIVATE_FILE, generate_command_key
from posgw.center.db import CenterStore
from posgw.cli.main import main
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from posgw.protocols.canonical_json import canonical_json
from tests.brokers import shared_broker_port
from tests.center.events import DAY_TEXT, GATEWAY_ID, signed_event
from tests.center.processes import POSGW, Topics, write_config

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
jsonschema = pytest.importorskip("jsonschema")

#: (n, terminal, amount, status) of the stored day (DAY); RRN = n, STAN = n.
DAY_EVENTS = [(1, "T0001", 1250, "settled"), (2, "T0001", 1250, "settled"),
              (3, "T0002", 990, "settled"), (4, "T0001", 1250, "reversed"),
              (5, "T0002", 500, "refund"), (6, "T0001", 3000, "frozen"),
              (7, "T0001", 100, "declined")]



@pytest.fixture
def config(tmp_path: Path, keys: GatewayKeys) -> Path:
    url = f"sqlite:///{tmp_path / 'center.db'}"
    store = CenterStore(url)
    try:
        for n, terminal, amount, status in DAY_EVENTS:
            store.insert_event(f"pos/v1/B001/{terminal}/tx",
                               signed_event(keys, n, terminal=terminal, amount=amount,
                                            status=status))
    finally:
        store.close()
    return write_config(tmp_path / "center.toml", database=url, port=1883,
                        topics=Topics.fresh(), client_id=None, keys_dir=tmp_path / "keys")


def posgw(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["center", "-c", str(config), *args])


def found(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_query_finds_a_payment_by_rrn(config: Path) -> None:
    [event] = found(posgw(config, "query", "--rrn", "000000000003", "--json"))
    assert (event["terminal_id"], event["stan"], event["amount_minor"]) == ("T0002", "000003", 990)
    assert event["pan_masked"] == "476173******0010"


def test_query_finds_a_payment_by_terminal_and_stan(config: Path) -> None:
    [event] = found(posgw(config, "query", "--terminal", "T0001", "--stan", "000002", "--json"))
    assert event["rrn"] == "000000000002"


def test_query_finds_a_payment_by_last4_amount_and_day(config: Path) -> None:
    events = found(posgw(config, "query", "--last4", "0010", "--amount", "1250",
                         "--date", DAY_TEXT, "--json"))
    assert [(e["stan"], e["status"]) for e in events] == [
        ("000001", "settled"), ("000002", "settled"), ("000004", "reversed")]


def test_query_prints_a_table_without_any_card_number_in_clear(config: Path) -> None:
    result = posgw(config, "query", "--rrn", "000000000001")
    assert result.exit_code == 0
    assert "476173******0010" in result.stdout and "settled" in result.stdout
    assert "4761739001010010" not in result.output


@pytest.mark.parametrize("args", [
    ("--rrn", "999999999999"),
    ("--terminal", "T0001", "--stan", "999999"),
    ("--last4", "0010", "--amount", "1250", "--date", "2025-03-15"),
])
def test_query_exits_1_when_nothing_arrived(config: Path, args: tuple[str, ...]) -> None:
    result = posgw(config, "query", *args)
    assert (result.exit_code, result.stdout) == (1, "")
    assert "nothing found" in result.stderr


@pytest.mark.parametrize("args", [
    (), ("--terminal", "T0001"), ("--rrn", "1", "--stan", "2"), ("--last4", "10", "--amount", "5"),
    ("--rrn", "1", "--date", DAY_TEXT),
])
def test_an_incomplete_query_is_a_usage_error(config: Path, args: tuple[str, ...]) -> None:
    assert posgw(config, "query", *args).exit_code == 2


def test_totals_net_returns_out_of_the_settled_sum(config: Path) -> None:
    days = found(posgw(config, "totals", "--date", DAY_TEXT, "--json"))
    shown = {d["terminal_id"]: (d["settled_count"], d["settled_minor"], d["returned_minor"],
                                d["net_minor"], d["held_minor"], d["declined_count"])
             for d in days}
    assert shown == {"T0001": (2, 2500, 1250, 1250, 3000, 1), "T0002": (1, 990, 500, 490, 0, 0)}
    table = posgw(config, "totals", "--date", DAY_TEXT)
    assert table.exit_code == 0 and "1740" in table.stdout  # net of the branch, all terminals


def test_a_config_mistake_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "center.toml"
    bad.write_text("[mqtt]\nport = 0\n")
    result = posgw(bad, "totals")
    assert result.exit_code == 2
    assert f"{bad}: mqtt.port: must be 1..65535; got 0" in result.stderr


def test_queries_never_create_a_missing_database(tmp_path: Path, keys: GatewayKeys) -> None:
    config = write_config(tmp_path / "center.toml", database=f"sqlite:///{tmp_path / 'no.db'}",
                          port=1883, topics=Topics.fresh(), client_id=None,
                          keys_dir=tmp_path / "keys")
    result = posgw(config, "query", "--rrn", "1")
    assert result.exit_code == 2 and "no center database" in result.stderr
    assert not (tmp_path / "no.db").exists()


# --- cmd: a fake gateway on the real broker answers ------------------------------


def validator(name: str) -> Any:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.json").read_text()))


def reply_to(command: dict[str, Any], keys: GatewayKeys, outcome: str = "done") -> bytes:
    reply = keys.signer.sign({
        "event_id": str(uuid.uuid4()), "schema": "command-reply.v1", "branch_id": "B001",
        "gateway_id": GATEWAY_ID, "seq": 1, "occurred_at": "2025-03-14T10:00:00Z",
        "command_id": command["command_id"], "outcome": outcome})
    validator("command-reply.v1").validate(reply)
    return canonical_json(reply)


async def run_cmd(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        POSGW, "center", "-c", str(config), "cmd", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode(), err.decode()


async def answer_one_command(port: int, topics: Topics, replier_keys: GatewayKeys,
                             subscribed: asyncio.Event) -> dict[str, Any]:
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as gw:
        await gw.subscribe(f"{topics.prefix}/B001/cmd", qos=1)
        subscribed.set()
        async for message in gw.messages:
            assert isinstance(message.payload, bytes)
            command: dict[str, Any] = json.loads(message.payload)
            await gw.publish(f"{topics.prefix}/B001/cmd/reply", reply_to(command, replier_keys),
                             qos=1)
            return command
    raise AssertionError("the fake gateway's connection ended")


def command_key(tmp_path: Path) -> Path:
    """The center's command key (`posgw center command-key`), made once per test."""
    if not (tmp_path / "hq" / PRIVATE_FILE).exists():
        generate_command_key(tmp_path / "hq")
    return tmp_path / "hq" / PRIVATE_FILE


async def cmd_against_fake_gateway(tmp_path: Path, replier_keys: GatewayKeys, *args: str,
                                   signed: bool = True
                                   ) -> tuple[dict[str, Any], tuple[int, str, str]]:
    port, topics = shared_broker_port(), Topics.fresh()
    config = write_config(tmp_path / "cmd.toml", database=f"sqlite:///{tmp_path / 'c.db'}",
                          port=port, topics=topics, client_id=None, keys_dir=tmp_path / "keys",
                          command_key=command_key(tmp_path) if signed else None)
    subscribed = asyncio.Event()
    gateway = asyncio.create_task(answer_one_command(port, topics, replier_keys, subscribed))
    await asyncio.wait_for(subscribed.wait(), 10)
    outcome = await run_cmd(config, "B001", *args, "--wait-reply", "10")
    return await asyncio.wait_for(gateway, 10), outcome


async def test_cmd_publishes_a_schema_valid_command_and_prints_the_verified_reply(
        tmp_path: Path, keys: GatewayKeys) -> None:
    command, (status, out, err) = await cmd_against_fake_gateway(
        tmp_path, keys, "return", "CASE-17")
    validator("command.v1").validate(command)
    assert (command["command"], command["case_id"], command["branch_id"]) == (
        "return_to_card", "CASE-17", "B001")
    printed_command, printed_reply = (json.loads(line) for line in out.splitlines())
    assert status == 0, err
    assert printed_command == command
    assert (printed_reply["command_id"], printed_reply["outcome"]) == (
        command["command_id"], "done")


async def test_cmd_rejects_a_reply_signed_by_an_unregistered_key(
        tmp_path: Path, keys: GatewayKeys) -> None:
    impostor = load_keys(generate_keys(tmp_path / "impostor").parent)
    _, (status, _out, err) = await cmd_against_fake_gateway(tmp_path, impostor, "ping")
    assert status == 1
    assert "reply failed verification: bad signature" in err


async def test_cmd_exits_1_when_no_reply_comes_in_time(tmp_path: Path, keys: GatewayKeys
                                                       ) -> None:
    config = write_config(tmp_path / "cmd.toml", database=f"sqlite:///{tmp_path / 'c.db'}",
                          port=shared_broker_port(), topics=Topics.fresh(), client_id=None,
                          keys_dir=tmp_path / "keys", command_key=command_key(tmp_path))
    status, out, err = await run_cmd(config, "B001", "decommission", "T0009",
                                     "--wait-reply", "0.3")
    assert status == 1 and "no reply within 0.3 s" in err
    assert json.loads(out)["terminal_id"] == "T0009"


async def test_cmd_without_a_command_key_refuses_unless_told_to_send_unsigned(
        tmp_path: Path, keys: GatewayKeys) -> None:
    config = write_config(tmp_path / "cmd.toml", database=f"sqlite:///{tmp_path / 'c.db'}",
                          port=shared_broker_port(), topics=Topics.fresh(), client_id=None,
                          keys_dir=tmp_path / "keys")
    status, out, err = await run_cmd(config, "B001", "release", "CASE-1")
    assert (status, out) == (2, "")
    assert "no [center] command_key" in err and "posgw center command-key DIR" in err
    assert "--unsigned" in err
    command, (status, _out, err) = await cmd_against_fake_gateway(
        tmp_path, keys, "ping", "--unsigned", signed=False)
    assert status == 0, err
    assert "signature" not in command


@pytest.mark.parametrize("args", [("ping", "extra"), ("release",), ("reboot",)])
def test_cmd_with_wrong_arguments_is_a_usage_error(config: Path, args: tuple[str, ...]) -> None:
    assert posgw(config, "cmd", "B001", *args).exit_code == 2


def test_cmd_help_says_decommission_drains_and_return_is_a_refund() -> None:
    text = " ".join(CliRunner().invoke(main, ["center", "cmd", "--help"]).output.split())
    assert "it drains first" in text and "reversals, voids and refunds still pass" in text
    assert "(recorded as a refund)" in text and "(reversal)" not in text
    assert "refuse every further request" not in text
    assert "A decommissioned terminal cannot be brought back" in text
