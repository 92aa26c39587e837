"""Gateway key files: generation (`posgw keys generate`) and loading.

Layout of the keys directory:

- `token.key`       32 random bytes, hex: the PAN token (HMAC) key; 0600.
- `signing.key`     Ed25519 private key, PKCS#8 PEM, unencrypted; 0600.
- `signing.pub`     Ed25519 public key, SubjectPublicKeyInfo PEM; 0644.
                    This is the file to hand to the center.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.security.signing import PayloadSigner
from gateway.security.tokens import MIN_KEY_BYTES, PanTokenizer

TOKEN_KEY_FILE = "token.key"
SIGNING_KEY_FILE = "signing.key"
PUBLIC_KEY_FILE = "signing.pub"
_PRIVATE_MODE = 0o600


class KeyFileError(Exception):
    """A key file is missing, unreadable or malformed; names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    tokenizer: PanTokenizer
    signer: PayloadSigner
    public_key_pem: bytes


def generate_keys(directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write fresh keys into `directory`; returns the public key file's path.

    Refuses to replace existing keys unless `overwrite`: a new token key
    changes every card's token, a new signing key breaks the center's trust.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    existing = [name for name in (TOKEN_KEY_FILE, SIGNING_KEY_FILE) if (folder / name).exists()]
    if existing and not overwrite:
        raise KeyFileError(folder / existing[0], "already exists (pass overwrite to replace)")
    private = Ed25519PrivateKey.generate()
    _write_private(folder / TOKEN_KEY_FILE, secrets.token_hex(MIN_KEY_BYTES).encode("ascii"))
    _write_private(folder / SIGNING_KEY_FILE, private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    public_path = folder / PUBLIC_KEY_FILE
    public_path.write_bytes(public_pem(private))
    return public_path


def load_keys(directory: str | Path) -> GatewayKeys:
    folder = Path(directory)
    private = _load_private_key(folder / SIGNING_KEY_FILE)
    return GatewayKeys(PanTokenizer(_load_token_key(folder / TOKEN_KEY_FILE)),
                       PayloadSigner(private), public_pem(private))


def public_pem(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: no window in which another user can read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, _PRIVATE_MODE)  # O_CREAT's mode does not apply to an existing file


def _load_token_key(path: Path) -> bytes:
    text = _read(path).strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(path, "token key is not hex") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(path, f"token key shorter than {MIN_KEY_BYTES} bytes")
    return key


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError):
        raise KeyFileError(path, "not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(path, "not an Ed25519 key")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(path, exc.strerror or "cannot read") from None
