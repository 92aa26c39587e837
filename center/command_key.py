"""The center's command-signing key (`[center] command_key` in center.toml).

A gateway configured with the public half (`[keys] center_public_key`)
obeys only commands signed with it: an Ed25519 signature over the
command's canonical JSON in its `signature` member, the scheme the
gateways sign their own events with. `posgw center command-key DIR` writes
the pair: `command.key` (PKCS#8 PEM, 0600) stays at head office,
`command.pub` goes to every gateway.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.protocols.canonical_json import canonical_json, without_signature

PRIVATE_FILE = "command.key"
PUBLIC_FILE = "command.pub"
SIGNATURE_KEY = "signature"


class CommandKeyError(ValueError):
    """A command key file that cannot be used; says which and why."""


def sign_command(command: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of `command` with its `signature` (any old one replaced)."""
    body = without_signature(command)
    signature = key.sign(canonical_json(body))
    return {**body, SIGNATURE_KEY: base64.b64encode(signature).decode("ascii")}


def load_command_key(path: str | Path) -> Ed25519PrivateKey:
    """The private key; refused when group or others may read it (then it is
    no longer head office's alone)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise CommandKeyError(f"{path}: group or others may access it; "
                                      f"chmod 600 {path}")
            pem = file.read()
    except OSError as exc:
        raise CommandKeyError(f"{path}: {exc.strerror or 'cannot read'}") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise CommandKeyError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CommandKeyError(f"{path}: not an Ed25519 private key")
    return key


def generate_command_key(directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write a new pair into `directory`; returns the public file's path."""
    folder = Path(directory)
    private_path, public_path = folder / PRIVATE_FILE, folder / PUBLIC_FILE
    if private_path.exists() and not overwrite:
        raise CommandKeyError(f"{private_path} exists (--force replaces it, and every "
                              "gateway then needs the new command.pub)")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(os.open(private_path, flags, 0o600), "wb") as file:
        os.fchmod(file.fileno(), 0o600)  # an existing file keeps its mode otherwise
        file.write(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return public_path
