"""Signed center commands: the gateway's check and the center's key files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from posgw.center.command_key import (
    PRIVATE_FILE,
    PUBLIC_FILE,
    CommandKeyError,
    generate_command_key,
    load_command_key,
    sign_command,
)
from posgw.center.commands import build_command
from posgw.center.config import load_center_config
from posgw.cli.main import main
from posgw.gateway.config import parse_config
from posgw.gateway.security.command_auth import CommandAuthenticator
from posgw.gateway.security.command_auth import load_center_public_key as load_public
from posgw.protocols.config_error import ConfigError

CENTER, OWN = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
AUTH = CommandAuthenticator([CENTER.public_key(), OWN.public_key()])


def test_a_command_signed_by_the_center_or_the_gateway_itself_is_obeyed() -> None:
    command = build_command("B001", "release", ["CASE-1"])
    assert AUTH.refusal(sign_command(command, CENTER)) is None
    assert AUTH.refusal(sign_command(command, OWN)) is None


@pytest.mark.parametrize(("signature", "reason"), [
    (None, "unsigned"),
    (12, "unsigned"),
    ("not base64!", "not base64"),
    ("", "does not verify"),
])
def test_a_command_without_a_good_signature_is_refused_with_the_reason(
        signature: Any, reason: str) -> None:
    command = build_command("B001", "decommission", ["T1"])
    if signature is not None:
        command["signature"] = signature
    refusal = AUTH.refusal(command)
    assert refusal is not None and reason in refusal


def test_a_command_signed_by_another_key_is_refused() -> None:
    forged = sign_command(build_command("B001", "ping", []), Ed25519PrivateKey.generate())
    assert AUTH.refusal(forged) == "signature does not verify with the center's key"


_values = st.one_of(st.text(max_size=20), st.integers(-10**6, 10**6), st.booleans())


@given(st.dictionaries(st.text(min_size=1, max_size=10), _values, min_size=1, max_size=6),
       st.data())
def test_changing_any_member_of_a_signed_command_voids_its_signature(
        fields: dict[str, Any], data: st.DataObject) -> None:
    command = sign_command({k: v for k, v in fields.items() if k != "signature"}, CENTER)
    assert AUTH.refusal(command) is None
    name = data.draw(st.sampled_from(sorted(k for k in command if k != "signature")))
    changed = data.draw(_values.filter(lambda v: v != command[name] or type(v) is not
                                       type(command[name])))
    assert AUTH.refusal({**command, name: changed}) is not None


def test_the_key_pair_is_written_private_and_not_replaced_by_accident(tmp_path: Path) -> None:
    public = generate_command_key(tmp_path / "hq")
    private = tmp_path / "hq" / PRIVATE_FILE
    assert public == tmp_path / "hq" / PUBLIC_FILE
    assert os.stat(private).st_mode & 0o777 == 0o600
    key = load_command_key(private)
    command = sign_command(build_command("B001", "ping", []), key)
    assert CommandAuthenticator([load_public(public)]).refusal(command) is None
    with pytest.raises(CommandKeyError, match="--force"):
        generate_command_key(tmp_path / "hq")
    generate_command_key(tmp_path / "hq", overwrite=True)
    assert CommandAuthenticator([load_public(public)]).refusal(command) is not None


def test_the_center_refuses_a_command_key_others_may_read(tmp_path: Path) -> None:
    generate_command_key(tmp_path / "hq")
    os.chmod(tmp_path / "hq" / PRIVATE_FILE, 0o644)
    with pytest.raises(CommandKeyError, match="chmod 600"):
        load_command_key(tmp_path / "hq" / PRIVATE_FILE)


def test_only_posgw_center_cmd_reads_the_command_key(tmp_path: Path) -> None:
    config = tmp_path / "center.toml"
    config.write_text('[center]\ncommand_key = "hq/command.key"\n')
    # No such file yet: the ingest service and the queries load this config fine.
    loaded = load_center_config(config, {})
    assert loaded.command_key_path == tmp_path / "hq" / "command.key"
    refused = CliRunner().invoke(main, ["center", "-c", str(config), "cmd", "B001", "ping"])
    assert refused.exit_code == 2
    assert "[center] command_key" in refused.output and "No such file" in refused.output


def test_an_empty_center_public_key_is_a_mistake_not_checks_turned_off() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"gateway": {"branch_id": "B001", "gateway_id": "gw-1"},
                      "keys": {"center_public_key": ""}}, "gw.toml")
    assert caught.value.key == "keys.center_public_key"
