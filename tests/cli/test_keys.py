"""`posgw keys generate | rotate | show` from the outside: the real console script on a
temporary keys directory."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.cli.keys import aes_check_value, fingerprint
from posgw.gateway.security import load_keys
from posgw.gateway.security.keys import LooseKeyFile
from posgw.gateway.security.vault import load_keyring
from tests.center_key import center_public_key
from tests.cli.test_status import run_posgw

PAN = "4761739001010010"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "state" / "keys"
    result = run_posgw("keys", "generate", "--dir", str(directory))
    assert result.returncode == 0, result.stderr
    return directory


def test_generate_writes_private_files_0600_in_a_0700_directory(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "keys"
    result = run_posgw("keys", "generate", "--dir", str(directory))
    assert result.returncode == 0, result.stderr
    assert mode(directory / "token.key") == 0o600
    assert mode(directory / "signing.key") == 0o600
    assert mode(directory) == 0o700
    assert f"public key (give it to the center): {directory / 'signing.pub'}" in result.stdout
    load_keys(directory)  # what was written is what the daemon can load


def test_generate_refuses_to_replace_keys_without_force(keys_dir: Path) -> None:
    before = (keys_dir / "token.key").read_bytes()
    result = run_posgw("keys", "generate", "--dir", str(keys_dir))
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"posgw keys generate: {keys_dir / 'token.key'}: already exists;")
    assert "--force" in line
    assert (keys_dir / "token.key").read_bytes() == before


def test_generate_with_force_replaces_the_keys(keys_dir: Path) -> None:
    before = (keys_dir / "token.key").read_bytes()
    result = run_posgw("keys", "generate", "--dir", str(keys_dir), "--force")
    assert result.returncode == 0, result.stderr
    assert (keys_dir / "token.key").read_bytes() != before
    assert mode(keys_dir / "token.key") == 0o600


def test_show_prints_public_key_fingerprint_and_modes_but_no_private_material(
        keys_dir: Path) -> None:
    result = run_posgw("keys", "show", "--dir", str(keys_dir))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    token_hex = (keys_dir / "token.key").read_text().strip()
    private_pem = (keys_dir / "signing.key").read_bytes()
    private = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    private_body = "".join(private_pem.decode().splitlines()[1:-1])
    for secret in (token_hex, token_hex.upper(), private_body, seed.hex(), seed.hex().upper()):
        assert secret not in output
    assert "PRIVATE KEY" not in output
    public_pem = (keys_dir / "signing.pub").read_text()
    assert public_pem.strip() in result.stdout
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert f"fingerprint sha256:{hashlib.sha256(der).hexdigest()}" in result.stdout
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()
            if line.split() and line.split()[0] in ("token.key", "signing.key")}
    assert rows == {"token.key": "0600", "signing.key": "0600"}


def test_show_flags_a_private_file_others_can_read_with_status_1(keys_dir: Path) -> None:
    (keys_dir / "signing.key").chmod(0o644)
    result = run_posgw("keys", "show", "--dir", str(keys_dir))
    assert result.returncode == 1
    assert (f"posgw keys show: {keys_dir / 'signing.key'}: mode 0644, must be 0600"
            in result.stderr)


def test_show_flags_a_keys_folder_others_can_enter_with_status_1(keys_dir: Path) -> None:
    keys_dir.chmod(0o755)  # what the daemon refuses to start with
    result = run_posgw("keys", "show", "--dir", str(keys_dir))
    assert result.returncode == 1
    assert (f"posgw keys show: {keys_dir}: mode 0755, must be 0700 (chmod 700 {keys_dir})"
            in result.stderr)


def test_show_flags_a_public_key_that_is_not_the_signing_keys_half(keys_dir: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (keys_dir / "signing.pub").write_bytes(other)
    result = run_posgw("keys", "show", "--dir", str(keys_dir))
    assert result.returncode == 1
    assert "not the public half of signing.key" in result.stderr


def test_show_on_a_directory_without_keys_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_posgw("keys", "show", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"posgw keys show: {tmp_path / 'signing.key'}: No such file or directory"]


# --- the card-vault keys, rotation, refusing loose private files ------------------


def test_generate_also_writes_the_first_vault_key_private(keys_dir: Path) -> None:
    assert mode(keys_dir / "vault") == 0o700
    assert mode(keys_dir / "vault" / "v1.key") == 0o600
    assert load_keyring(keys_dir).current == "v1"


def test_generate_with_force_keeps_the_vault_keys(keys_dir: Path) -> None:
    before = (keys_dir / "vault" / "v1.key").read_bytes()
    result = run_posgw("keys", "generate", "--dir", str(keys_dir), "--force")
    assert result.returncode == 0, result.stderr
    assert (keys_dir / "vault" / "v1.key").read_bytes() == before
    assert sorted(p.name for p in (keys_dir / "vault").glob("*.key")) == ["v1.key"]


def test_rotate_encryption_makes_a_new_current_key_and_old_cards_still_open(
        keys_dir: Path) -> None:
    sealed = load_keyring(keys_dir).seal(PAN, event_id="ev-1")
    result = run_posgw("keys", "rotate", "--dir", str(keys_dir), "--what", "encryption")
    assert result.returncode == 0, result.stderr
    keyring = load_keyring(keys_dir)
    new_key = bytes.fromhex((keys_dir / "vault" / "v2.key").read_text())
    assert f"new vault key v2 (check value {aes_check_value(new_key)}) is current" in (
        result.stdout)
    assert "kept for decrypting: v1" in result.stdout
    assert keyring.current == "v2" and keyring.seal(PAN, event_id="ev-2").key_id == "v2"
    assert keyring.open(sealed, event_id="ev-1") == PAN
    assert mode(keys_dir / "vault" / "v2.key") == 0o600


def test_rotate_signing_keeps_the_old_public_key_and_says_to_register_the_new_one(
        keys_dir: Path) -> None:
    old_public = (keys_dir / "signing.pub").read_bytes()
    result = run_posgw("keys", "rotate", "--dir", str(keys_dir), "--what", "signing")
    assert result.returncode == 0, result.stderr
    new_public = (keys_dir / "signing.pub").read_bytes()
    assert (keys_dir / "signing.pub.1").read_bytes() == old_public != new_public
    assert load_keys(keys_dir).public_key_pem == new_public
    assert mode(keys_dir / "signing.key") == 0o600
    assert f"new signing key, fingerprint sha256:{fingerprint(new_public)}" in result.stdout
    assert "BEFORE restarting the gateway, register the new public key" in result.stdout
    assert (f"gateways register GATEWAY_ID {keys_dir / 'signing.pub'}" in result.stdout)
    assert f"--fingerprint {fingerprint(old_public)}" in result.stdout
    assert new_public.decode().strip() in result.stdout and "PRIVATE" not in result.stdout


def test_rotate_token_is_refused_with_the_reason_unless_forced(keys_dir: Path) -> None:
    before = (keys_dir / "token.key").read_bytes()
    refused = run_posgw("keys", "rotate", "--dir", str(keys_dir), "--what", "token")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "refused: a new token key changes every card's token" in refused.stderr
    assert "risk windows" in refused.stderr and "--force" in refused.stderr
    assert (keys_dir / "token.key").read_bytes() == before
    forced = run_posgw("keys", "rotate", "--dir", str(keys_dir), "--what", "token", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (keys_dir / "token.key").read_bytes() != before
    assert bytes.fromhex((keys_dir / "token.key.1").read_text()) == bytes.fromhex(
        before.decode())
    assert mode(keys_dir / "token.key.1") == 0o600
    assert before.decode().strip() not in forced.stdout + forced.stderr


def test_show_lists_vault_key_ids_and_check_values_but_no_vault_key(keys_dir: Path) -> None:
    run_posgw("keys", "rotate", "--dir", str(keys_dir), "--what", "encryption")
    run_posgw("keys", "rotate", "--dir", str(keys_dir), "--what", "signing")
    result = run_posgw("keys", "show", "--dir", str(keys_dir))
    assert result.returncode == 0, result.stderr
    secrets = [(keys_dir / "vault" / f"v{n}.key").read_text().strip() for n in (1, 2)]
    for n, secret in enumerate(secrets, 1):
        assert secret not in result.stdout and secret.upper() not in result.stdout
        value = aes_check_value(bytes.fromhex(secret))
        mark = " (current)" if n == 2 else ""
        assert f"vault key:   v{n}, AES-256-GCM, check value {value}{mark}\n" in result.stdout
    old = fingerprint((keys_dir / "signing.pub.1").read_bytes())
    assert f"previous:  signing.pub.1, fingerprint sha256:{old}" in result.stdout


def test_show_flags_a_vault_key_others_can_read(keys_dir: Path) -> None:
    (keys_dir / "vault" / "v1.key").chmod(0o604)
    result = run_posgw("keys", "show", "--dir", str(keys_dir))
    assert result.returncode == 1
    key_file = keys_dir / "vault" / "v1.key"
    assert f"{key_file}: mode 0604, must be 0600 (chmod 600 {key_file})" in result.stderr


@pytest.mark.parametrize("name", ["signing.key", "token.key"])
def test_loading_refuses_a_private_key_group_or_others_may_read(
        keys_dir: Path, name: str) -> None:
    (keys_dir / name).chmod(0o640)
    with pytest.raises(LooseKeyFile) as info:
        load_keys(keys_dir)
    assert str(info.value) == (f"{keys_dir / name}: mode 0640 lets group or others access a "
                               f"private key; refusing to use it. Fix: chmod "
                               f"600 {keys_dir / name}")


def test_the_daemon_refuses_to_start_with_a_loose_key_and_says_how_to_fix_it(
        tmp_path: Path, keys_dir: Path) -> None:
    (keys_dir / "signing.key").chmod(0o644)
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\nbranch_id = "B001"\ngateway_id = "gw-1"\n'
                      f'database = "sqlite:///{tmp_path / "gw.db"}"\n'
                      f'[keys]\ndir = "{keys_dir}"\ncenter_public_key = "{center_public_key()}"\n')
    result = run_posgw("run", "-c", str(config))
    assert result.returncode == 2
    assert (f"posgw run: {config}: keys.dir: {keys_dir / 'signing.key'}: mode 0644 lets "
            "group or others access a private key; refusing to use it. Fix: chmod 600 "
            f"{keys_dir / 'signing.key'}" in result.stderr)
    assert "Traceback" not in result.stderr
