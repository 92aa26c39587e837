"""`posgw center enroll`: what it writes works at the deployed broker, once.

The password file and ACL it writes are the ones a real mosquitto (the
shipped deploy/mosquitto/posgw.conf) then runs with; the password it prints
is the one that connects; running it again changes nothing unless a new
password is asked for, and then the old one stops working.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import aiomqtt
import pytest
from click.testing import CliRunner, Result

from posgw.center.command_key import PUBLIC_FILE, generate_command_key
from posgw.cli.main import main
from posgw.gateway.security import generate_keys
from tests.center.processes import Topics, write_config
from tests.security.certs import BrokerPki, make_pki
from tests.security.deployed_broker import CENTER, DeployedBroker, deployed_broker
from tests.security.test_deployed_broker import client, connected, next_topic

PASSWORD_LINE = re.compile(r"^  POSGW_MQTT_PASSWORD=(\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> BrokerPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def center_toml(tmp_path: Path) -> Path:
    generate_keys(tmp_path / "keys")
    generate_command_key(tmp_path / "command")
    config = write_config(tmp_path / "center.toml", database=f"sqlite:///{tmp_path / 'c.db'}",
                          port=1883, topics=Topics("pos/v1", "center"), client_id=None,
                          keys_dir=tmp_path / "keys")
    config.write_text(config.read_text().replace(
        "[center]\n", f'[center]\ncommand_key = "{tmp_path / "command" / "command.key"}"\n'))
    return config


def enroll(config: Path, folder: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, ["center", "-c", str(config), "enroll", *args,
                                       "--passwd", str(folder / "passwd"),
                                       "--acl", str(folder / "acl")])
    assert result.exit_code == 0, result.output
    return result


def printed_password(result: Result) -> str:
    [password] = PASSWORD_LINE.findall(result.stdout)
    return password


async def test_enrolled_credentials_work_at_the_deployed_broker_and_nowhere_else(
        tmp_path: Path, center_toml: Path, pki: BrokerPki) -> None:
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    gateway = enroll(center_toml, broker_dir, "B002", "gw-b002-1", "--public-key",
                     str(tmp_path / "keys" / "signing.pub"))
    center = enroll(center_toml, broker_dir, "--center", CENTER)
    passwords = {"gw-b002-1": printed_password(gateway), CENTER: printed_password(center)}
    assert "registered: gw-b002-1 (branch B002)" in gateway.stdout
    pem = (tmp_path / "command" / PUBLIC_FILE).read_text()
    assert pem in gateway.stdout  # the center's public command key, for the gateway
    snippet = gateway.stdout.split("(with the rest of deploy/gateway.example.toml):\n")[1]
    snippet = snippet.split("then: systemctl")[0].split("registered:")[0]
    toml = tomllib.loads(snippet)
    assert (toml["gateway"], toml["mqtt"]["username"]) == (
        {"branch_id": "B002", "gateway_id": "gw-b002-1"}, "gw-b002-1")
    assert "password" not in toml["mqtt"]  # it goes in the env file
    with deployed_broker(broker_dir, pki, passwords) as broker:
        await _b002_reaches_the_center_only_on_its_own_branch(broker)


async def _b002_reaches_the_center_only_on_its_own_branch(broker: DeployedBroker) -> None:
    async with connected(client(broker, CENTER)) as center:
        await center.subscribe("pos/v1/#", qos=1)  # what it may read of it
        async with connected(client(broker, "gw-b002-1")) as b002:
            await b002.subscribe("pos/v1/B001/cmd", qos=1)  # refused by the ACL
            await b002.subscribe("pos/v1/B002/cmd", qos=1)
            await center.publish("pos/v1/B001/cmd", b"{}", qos=1)
            await center.publish("pos/v1/B002/cmd", b"{}", qos=1)
            assert await next_topic(b002) == "pos/v1/B002/cmd"
            await b002.publish("pos/v1/B002/T0001/tx", b"{}", qos=1)
        # The center writes commands but does not read them back.
        assert await next_topic(center) == "pos/v1/B002/T0001/tx"


async def test_enrolling_again_changes_nothing_unless_asked(
        tmp_path: Path, center_toml: Path, pki: BrokerPki) -> None:
    first = enroll(center_toml, tmp_path, "B002", "gw-b002-1")
    files = [(tmp_path / name).read_bytes() for name in ("passwd", "acl")]
    again = enroll(center_toml, tmp_path, "B002", "gw-b002-1")
    assert "password of gw-b002-1: unchanged" in again.stdout
    assert "ACL of gw-b002-1: unchanged" in again.stdout
    assert not PASSWORD_LINE.search(again.stdout)
    assert [(tmp_path / name).read_bytes() for name in ("passwd", "acl")] == files
    renewed = enroll(center_toml, tmp_path, "B002", "gw-b002-1", "--new-password")
    assert "password of gw-b002-1: replaced" in renewed.stdout
    old, new = printed_password(first), printed_password(renewed)
    enroll(center_toml, tmp_path, "--center", CENTER)
    with deployed_broker(tmp_path, pki, {"gw-b002-1": new}) as broker:
        with pytest.raises(aiomqtt.MqttError):
            async with client(broker, "gw-b002-1", password=old):
                pass
        async with connected(client(broker, "gw-b002-1")):
            pass


def test_enroll_without_a_command_key_says_what_is_missing(tmp_path: Path) -> None:
    generate_keys(tmp_path / "keys")
    config = write_config(tmp_path / "center.toml", database=f"sqlite:///{tmp_path / 'c.db'}",
                          port=1883, topics=Topics.fresh(), client_id=None,
                          keys_dir=tmp_path / "keys")
    result = CliRunner().invoke(main, ["center", "-c", str(config), "enroll", "B002",
                                       "gw-b002-1", "--passwd", str(tmp_path / "passwd"),
                                       "--acl", str(tmp_path / "acl")])
    assert result.exit_code == 2
    assert "[center] command_key is not set" in result.stderr
