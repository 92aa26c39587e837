"""Fixtures of the forwarder tests: the gateway's keys, its store, the center's key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.center.command_key import PRIVATE_FILE, generate_command_key, load_command_key
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from posgw.gateway.store import Store


@pytest.fixture
def keys(tmp_path: Path) -> GatewayKeys:
    return load_keys(generate_keys(tmp_path / "keys").parent)


@pytest.fixture
def center_key(tmp_path: Path) -> tuple[Path, Ed25519PrivateKey]:
    """The center's command key pair: (public PEM path, private key)."""
    public = generate_command_key(tmp_path / "center")
    return public, load_command_key(tmp_path / "center" / PRIVATE_FILE)


@pytest.fixture
def store(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'gateway.db'}") as opened:
        yield opened
