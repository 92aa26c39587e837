"""Gateway key files: generation, rotation (`posgw keys ...`) and loading.

Layout of the keys directory:

- `token.key`          32 random bytes, hex: the PAN token (HMAC) key; 0600.
- `signing.key`        Ed25519 private key, PKCS#8 PEM, unencrypted; 0600.
- `signing.pub`        Ed25519 public key, SubjectPublicKeyInfo PEM; 0644.
                       This is the file to hand to the center.
- `signing.pub.<n>`    public keys replaced by `rotate signing` (n = 1, 2, ...).
- `token.key.<n>`      token keys replaced by `rotate token --force`; 0600.
- `vault/<id>.key`     AES-256 card-vault keys, 32 bytes hex, 0600, in a 0700
                       folder; ids `v1`, `v2`, ... (gateway/security/vault.py).
- `vault/current`      the id new vault writes use; older ids still decrypt.

Every private file is read through `read_private`, which refuses a file that
group or others may access: a key that others could have read is no longer
the gateway's alone, and starting anyway would hide that. For the same
reason the keys folder and the vault folder are refused when group or
others may enter them (`LooseKeyFolder`); both are created 0700.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.drivers.private_files import loose_folder, make_private_folder
from posgw.gateway.security.signing import PayloadSigner
from posgw.gateway.security.tokens import MIN_KEY_BYTES, PanTokenizer

TOKEN_KEY_FILE = "token.key"
SIGNING_KEY_FILE = "signing.key"
PUBLIC_KEY_FILE = "signing.pub"
VAULT_DIR = "vault"
VAULT_CURRENT_FILE = "current"
VAULT_KEY_BYTES = 32  # AES-256
#: A vault key id is stored next to each ciphertext: short and plain.
VAULT_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644
_PRIVATE_DIR_MODE = 0o700
#: Any permission bit for group or others makes a private key file unsafe.
_LOOSE_BITS = 0o077


class KeyFileError(Exception):
    """A key file is missing, unreadable or malformed; names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class LooseKeyFile(KeyFileError):
    """A private key file that group or others may access."""

    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(path, f"mode {mode:04o} lets group or others access a private key; "
                               f"refusing to use it. Fix: chmod 600 {path}")
        self.mode = mode


class LooseKeyFolder(KeyFileError):
    """The keys or vault folder, which group or others may enter."""


def refuse_loose_folder(folder: Path) -> None:
    """LooseKeyFolder when group or others may enter `folder` (a folder not
    there yet is left to whoever creates it)."""
    reason = loose_folder(folder) if folder.is_dir() else None
    if reason is not None:
        raise LooseKeyFolder(folder, reason)


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    tokenizer: PanTokenizer
    signer: PayloadSigner
    public_key_pem: bytes


# -- generation and rotation ---------------------------------------------------


def generate_keys(directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write fresh keys into `directory`; returns the public key file's path.

    Refuses to replace existing keys unless `overwrite`: a new token key
    changes every card's token, a new signing key breaks the center's trust.
    The vault keyring is never replaced (that would make every vaulted card
    unreadable): its first key is created when it has none.
    """
    folder = Path(directory)
    make_private_folder(folder)
    existing = [name for name in (TOKEN_KEY_FILE, SIGNING_KEY_FILE) if (folder / name).exists()]
    if existing and not overwrite:
        raise KeyFileError(folder / existing[0], "already exists (pass overwrite to replace)")
    private = Ed25519PrivateKey.generate()
    write_private(folder / TOKEN_KEY_FILE, secrets.token_hex(MIN_KEY_BYTES).encode("ascii"))
    write_private(folder / SIGNING_KEY_FILE, _private_pem(private))
    public_path = folder / PUBLIC_KEY_FILE
    _write_public(public_path, public_pem(private))
    if not vault_key_ids(folder):
        add_vault_key(folder)
    return public_path


def rotate_signing_key(directory: str | Path) -> tuple[Path, Path]:
    """A new Ed25519 key; the old public key stays as `signing.pub.<n>`.

    Returns (archived old public key, new public key). The old private key
    is dropped: nothing signs with it again. Events already sealed in the
    outbox keep their old signature, so the center must trust both keys
    until the outbox has drained.
    """
    folder = Path(directory)
    old = _load_private_key(folder / SIGNING_KEY_FILE)
    archived = _next_free(folder, PUBLIC_KEY_FILE)
    _write_public(archived, public_pem(old))  # from the key itself, not a file that may differ
    private = Ed25519PrivateKey.generate()
    write_private(folder / SIGNING_KEY_FILE, _private_pem(private))
    _write_public(folder / PUBLIC_KEY_FILE, public_pem(private))
    return archived, folder / PUBLIC_KEY_FILE


def rotate_token_key(directory: str | Path) -> Path:
    """A new token key; the old one is kept (0600) as `token.key.<n>`.

    Every card's token changes, so the risk windows lose track of every card
    and the center sees new tokens: callers must make the operator insist.
    """
    folder = Path(directory)
    current = folder / TOKEN_KEY_FILE
    old = _load_token_key(current)
    archived = _next_free(folder, TOKEN_KEY_FILE)
    write_private(archived, old.hex().encode("ascii"))
    write_private(current, secrets.token_hex(MIN_KEY_BYTES).encode("ascii"))
    return archived


def add_vault_key(directory: str | Path) -> str:
    """A new AES-256 vault key, made current; returns its id. Old keys stay so
    cards sealed under them still open."""
    vault = Path(directory) / VAULT_DIR
    vault.mkdir(mode=_PRIVATE_DIR_MODE, exist_ok=True)
    os.chmod(vault, _PRIVATE_DIR_MODE)  # mkdir's mode does not apply to an existing folder
    numbers = [int(key_id[1:]) for key_id in vault_key_ids(directory)
               if re.fullmatch(r"v\d+", key_id)]
    key_id = f"v{max(numbers, default=0) + 1}"
    write_private(vault / f"{key_id}.key", secrets.token_hex(VAULT_KEY_BYTES).encode("ascii"))
    # The key file is on disk before it is named current: a crash in between
    # leaves an unused key, never a current id without its key.
    write_private(vault / VAULT_CURRENT_FILE, key_id.encode("ascii") + b"\n")
    return key_id


# -- loading -------------------------------------------------------------------


def load_keys(directory: str | Path, *, refuse_loose: bool = True) -> GatewayKeys:
    """The token and signing keys. `refuse_loose=False` is for diagnostics
    (`posgw keys show`) only: it reads private files whatever their mode."""
    folder = Path(directory)
    if refuse_loose:
        refuse_loose_folder(folder)
    private = _load_private_key(folder / SIGNING_KEY_FILE, refuse_loose)
    return GatewayKeys(PanTokenizer(_load_token_key(folder / TOKEN_KEY_FILE, refuse_loose)),
                       PayloadSigner(private), public_pem(private))


def load_signer(directory: str | Path) -> PayloadSigner:
    """The signing key alone (`posgw cases` signs its commands): an operator
    who may release a case needs no access to the PAN token key."""
    return PayloadSigner(_load_private_key(Path(directory) / SIGNING_KEY_FILE))


def load_token_key(directory: str | Path, *, refuse_loose: bool = True) -> bytes:
    return _load_token_key(Path(directory) / TOKEN_KEY_FILE, refuse_loose)


def vault_key_ids(directory: str | Path) -> list[str]:
    """The ids of the vault keys on disk, sorted (v2 before v10)."""
    vault = Path(directory) / VAULT_DIR
    if not vault.is_dir():
        return []
    ids = [path.stem for path in vault.glob("*.key") if VAULT_KEY_ID.fullmatch(path.stem)]
    return sorted(ids, key=lambda key_id: (len(key_id), key_id))


def read_vault_keys(directory: str | Path, *,
                    refuse_loose: bool = True) -> tuple[str, dict[str, bytes]]:
    """(current id, id -> AES key) of the vault keyring."""
    vault = Path(directory) / VAULT_DIR
    if refuse_loose:
        refuse_loose_folder(vault)
    current_path = vault / VAULT_CURRENT_FILE
    current = _read(current_path).decode("ascii", errors="replace").strip()
    if not VAULT_KEY_ID.fullmatch(current):
        raise KeyFileError(current_path, "not a vault key id")
    keys = {key_id: _load_hex_key(vault / f"{key_id}.key", VAULT_KEY_BYTES, refuse_loose)
            for key_id in vault_key_ids(directory)}
    if current not in keys:
        raise KeyFileError(current_path, f"names {current}, but {current}.key is missing")
    return current, keys


def public_pem(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def read_private(path: Path, *, refuse_loose: bool = True) -> bytes:
    """A private key file's bytes; refuses one that group or others may access.

    The mode is taken from the open descriptor, so it is the mode of the very
    file read (no swap between check and read).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise KeyFileError(path, exc.strerror or "cannot read") from None
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if refuse_loose and mode & _LOOSE_BITS:
            raise LooseKeyFile(path, mode)
        return handle.read()


def write_private(path: Path, data: bytes) -> None:
    """Atomically (re)place a private file, mode 0600 from its first byte: no
    window in which another user could read it, no half-written key."""
    _write_atomic(path, data, _PRIVATE_MODE)


# -- helpers -------------------------------------------------------------------


def _write_public(path: Path, data: bytes) -> None:
    _write_atomic(path, data, _PUBLIC_MODE)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, mode)  # O_CREAT's mode does not apply to a leftover file
        handle.write(data)
        handle.flush()
        os.fsync(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def _next_free(folder: Path, name: str) -> Path:
    number = 1
    while (folder / f"{name}.{number}").exists():
        number += 1
    return folder / f"{name}.{number}"


def _private_pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def _load_token_key(path: Path, refuse_loose: bool = True) -> bytes:
    key = _load_hex_key(path, None, refuse_loose)
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(path, f"token key shorter than {MIN_KEY_BYTES} bytes")
    return key


def _load_hex_key(path: Path, size: int | None, refuse_loose: bool) -> bytes:
    text = read_private(path, refuse_loose=refuse_loose).strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(path, "key is not hex") from None
    if size is not None and len(key) != size:
        raise KeyFileError(path, f"key is {len(key)} bytes, expected {size}")
    return key


def _load_private_key(path: Path, refuse_loose: bool = True) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(read_private(path, refuse_loose=refuse_loose),
                                                 password=None)
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
