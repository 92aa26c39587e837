"""`posgw keys generate | show` from the outside: the real console script on a
temporary keys directory."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.security import load_keys
from tests.cli.test_status import run_posgw


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
