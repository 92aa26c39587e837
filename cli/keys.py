"""`posgw keys generate | rotate | show`: the gateway's key files, never printing a secret.

The layout, the writing (private files created 0600) and the refusal of
private files others may read belong to `gateway.security.keys`; this
module only parses options, tightens the directory and reports. `show`
prints identifiers derived one way from the keys, never the keys: a
SHA-256 fingerprint of each public signing key and a check value per
symmetric key (token key: HMAC of a constant; vault keys: the AES key
check value).
"""

from __future__ import annotations

import hashlib
import hmac
import pwd
import stat
import sys
from pathlib import Path

import click
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from rich.console import Console
from rich.table import Table

from posgw.cli.common import fail
from posgw.gateway.security.keys import (
    PUBLIC_KEY_FILE,
    SIGNING_KEY_FILE,
    TOKEN_KEY_FILE,
    VAULT_CURRENT_FILE,
    VAULT_DIR,
    KeyFileError,
    add_vault_key,
    generate_keys,
    load_keys,
    load_token_key,
    read_vault_keys,
    rotate_signing_key,
    rotate_token_key,
    vault_key_ids,
)

EXIT_PROBLEM = 1
PRIVATE_FILES = (TOKEN_KEY_FILE, SIGNING_KEY_FILE)
#: Constant MAC'd under the token key to name it (a key check value, as
#: payment HSMs do for DES/AES keys): same key, same value; reveals nothing.
TOKEN_KCV_LABEL = b"posgw token key check value"
#: AES key check value: the first 3 bytes of AES-CMAC over a zero block
#: (ANSI X9.24-1:2017), the form payment HSMs print for AES keys.
AES_KCV_BYTES = 3
TOKEN_ROTATION_REFUSED = (
    "refused: a new token key changes every card's token. The risk windows lose "
    "every card's history (repeat-swipe and trial-amount rules start again from zero), "
    "open freeze cases and the center can no longer match a card's old and new "
    "transactions. Pass --force only if that is intended (e.g. the key leaked).")



_DIR_OPTION = click.option(
    "--dir", "directory", required=True, metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="The keys directory ([keys] dir in gateway.toml, e.g. /var/lib/posgw/keys).")


@click.group()
def keys() -> None:
    """Generate, rotate or inspect the gateway's keys: the PAN token key
    (token.key), the Ed25519 signing key (signing.key) and its public half
    (signing.pub, the file the center needs), and the card-vault encryption
    keys (vault/<id>.key)."""


@keys.command("generate")
@_DIR_OPTION
@click.option("--force", is_flag=True,
              help="Replace existing token and signing keys. Every card token changes and "
                   "the center must be given the new signing.pub. Vault keys are kept.")
def keys_generate(directory: Path, force: bool) -> None:
    """Write fresh keys into DIR (created 0700 when missing); private files are 0600.

    Refuses to overwrite existing keys without --force. The first vault key
    (vault/v1.key) is created too; existing vault keys are never replaced
    (use `rotate --what encryption`).
    """
    try:
        # Missing parents get the default mode; the keys directory itself is
        # private so nobody else can even list it.
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        public_path = generate_keys(directory, overwrite=force)
    except KeyFileError as exc:  # generate_keys raises it only for a key already there
        fail("keys generate", f"{exc.path}: already exists; --force replaces it (new token key: "
                          "new card tokens; new signing key: give the center the new "
                          f"{PUBLIC_KEY_FILE})")
    except OSError as exc:
        fail("keys generate", f"{exc.filename or directory}: {exc.strerror}")
    vault_ids = ", ".join(vault_key_ids(directory))
    click.echo(f"wrote {TOKEN_KEY_FILE}, {SIGNING_KEY_FILE} (0600) and {PUBLIC_KEY_FILE} "
               f"in {directory.resolve()}; vault keys: {vault_ids}")
    click.echo(f"public key (give it to the center): {public_path.resolve()}")


@keys.command("rotate")
@_DIR_OPTION
@click.option("--what", required=True, type=click.Choice(["encryption", "signing", "token"]),
              help="encryption: a new vault key; signing: a new Ed25519 key; token: a new "
                   "PAN token key (refused without --force).")
@click.option("--force", is_flag=True, help="Needed to rotate the token key.")
def keys_rotate(directory: Path, what: str, force: bool) -> None:
    """Replace one key, keeping what is needed to read the past.

    \b
    encryption  a new vault key becomes current; older ones stay, so cards
                vaulted under them still decrypt. Restart the gateway to use it.
    signing     a new Ed25519 key; the old public key is kept as
                signing.pub.<n>. Register the new public key at the center
                BEFORE restarting the gateway (the command is printed).
    token       refused unless --force: every card's token would change.
    """
    try:
        if what == "encryption":
            _rotate_encryption(directory)
        elif what == "signing":
            _rotate_signing(directory)
        elif not force:
            fail("keys rotate", TOKEN_ROTATION_REFUSED)
        else:
            archived = rotate_token_key(directory)
            click.echo(f"new {TOKEN_KEY_FILE}, check value "
                       f"{token_check_value(load_token_key(directory))}; the old key is kept "
                       f"as {archived.name} (0600). Every card token changes at the next start.")
    except KeyFileError as exc:
        fail("keys rotate", exc)
    except OSError as exc:
        fail("keys rotate", f"{exc.filename or directory}: {exc.strerror}")


def _rotate_encryption(directory: Path) -> None:
    key_id = add_vault_key(directory)
    _current, vault_keys = read_vault_keys(directory)
    older = [old for old in vault_keys if old != key_id]
    click.echo(f"new vault key {key_id} (check value {aes_check_value(vault_keys[key_id])}) "
               "is current")
    if older:
        click.echo(f"kept for decrypting: {', '.join(older)}")
    click.echo("restart the gateway (posgw run) to seal new cards under it")


def _rotate_signing(directory: Path) -> None:
    old = fingerprint(load_keys(directory).public_key_pem)
    archived, public_path = rotate_signing_key(directory)
    public = public_path.read_bytes()
    click.echo(f"new signing key, fingerprint sha256:{fingerprint(public)}")
    click.echo(f"old public key kept as {archived} (sha256:{old})")
    click.echo("BEFORE restarting the gateway, register the new public key at the center "
               "(GATEWAY_ID: [gateway] gateway_id in gateway.toml):")
    click.echo("  posgw center -c center.toml gateways register GATEWAY_ID "
               f"{public_path.resolve()} --branch BRANCH_ID")
    click.echo("Keep the old key registered until the gateway's outbox has drained (events "
               "already signed with it), then:")
    click.echo(f"  posgw center -c center.toml gateways revoke GATEWAY_ID --fingerprint {old}")
    click.echo(public.decode("ascii").rstrip())


@keys.command("show")
@_DIR_OPTION
def keys_show(directory: Path) -> None:
    """Key ids, check values, file permissions and the public key PEM. Never
    prints private material.

    \b
    signing key fingerprint: SHA-256 of the public key's DER form, i.e.
      openssl pkey -pubin -in signing.pub -outform DER | sha256sum
    token key check value: first 16 hex digits of HMAC-SHA256(key, label).
    vault key check value: first 6 hex digits of AES-CMAC(key, 16 zero bytes).
    Exit status 1 when a private file is readable by others or signing.pub
    does not match signing.key; 2 when a key cannot be read.
    """
    try:
        loaded = load_keys(directory, refuse_loose=False)  # report loose modes, below
        token_key = load_token_key(directory, refuse_loose=False)
        vault = read_vault_keys(directory, refuse_loose=False) \
            if vault_key_ids(directory) else None
    except KeyFileError as exc:
        fail("keys show", exc)
    problems = _permission_problems(directory)
    public_file = directory / PUBLIC_KEY_FILE
    if not public_file.is_file() or public_file.read_bytes() != loaded.public_key_pem:
        problems.append(f"{public_file}: missing or not the public half of {SIGNING_KEY_FILE}")
    Console(highlight=False).print(_files_table(directory))
    # Plain echo, not rich: a fingerprint or PEM line must never be wrapped.
    click.echo(f"signing key: Ed25519, fingerprint sha256:{fingerprint(loaded.public_key_pem)}")
    for old in _archived(directory, PUBLIC_KEY_FILE):
        click.echo(f"  previous:  {old.name}, fingerprint sha256:{fingerprint(old.read_bytes())}")
    click.echo(f"token key:   HMAC-SHA256, check value {token_check_value(token_key)}")
    _show_vault(vault)
    click.echo(loaded.public_key_pem.decode("ascii").rstrip())
    for problem in problems:
        click.echo(f"posgw keys show: {problem}", err=True)
    if problems:
        sys.exit(EXIT_PROBLEM)


def _show_vault(vault: tuple[str, dict[str, bytes]] | None) -> None:
    if vault is None:
        click.echo("vault keys:  none yet (the gateway creates v1 at its next start)")
        return
    current, vault_keys = vault
    for key_id, key in vault_keys.items():
        mark = " (current)" if key_id == current else ""
        click.echo(f"vault key:   {key_id}, AES-256-GCM, check value {aes_check_value(key)}"
                   f"{mark}")


def fingerprint(public_pem: bytes) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def token_check_value(token_key: bytes) -> str:
    return hmac.new(token_key, TOKEN_KCV_LABEL, hashlib.sha256).hexdigest()[:16]


def aes_check_value(key: bytes) -> str:
    mac = CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()[:AES_KCV_BYTES].hex().upper()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _private_files(directory: Path) -> list[Path]:
    vault = directory / VAULT_DIR
    return [*(directory / name for name in PRIVATE_FILES),
            *_archived(directory, TOKEN_KEY_FILE),
            *(vault / f"{key_id}.key" for key_id in vault_key_ids(directory))]


def _archived(directory: Path, name: str) -> list[Path]:
    """`name.1`, `name.2`, ... as rotations left them, oldest first."""
    found = [path for path in directory.glob(f"{name}.*") if path.suffix[1:].isdigit()]
    return sorted(found, key=lambda path: int(path.suffix[1:]))


def _permission_problems(directory: Path) -> list[str]:
    """What the daemon would refuse to start with: loose folders, loose files."""
    folders = [f"{path}: mode {_mode(path):04o}, must be 0700 (chmod 700 {path})"
               for path in (directory, directory / VAULT_DIR)
               if path.is_dir() and _mode(path) & 0o077]
    return folders + [f"{path}: mode {_mode(path):04o}, must be 0600 (chmod 600 {path})"
                      for path in _private_files(directory)
                      if path.exists() and _mode(path) & 0o077]


def _files_table(directory: Path) -> Table:
    table = Table("file", "mode", "owner", "bytes", box=None, pad_edge=False,
                  title=str(directory.resolve()), title_justify="left")
    vault = directory / VAULT_DIR
    paths = [directory, *(directory / name for name in PRIVATE_FILES),
             *_archived(directory, TOKEN_KEY_FILE), directory / PUBLIC_KEY_FILE,
             *_archived(directory, PUBLIC_KEY_FILE)]
    if vault.is_dir():
        paths += [vault, vault / VAULT_CURRENT_FILE,
                  *(vault / f"{key_id}.key" for key_id in vault_key_ids(directory))]
    for path in paths:
        name = "." if path == directory else str(path.relative_to(directory))
        if not path.exists():
            table.add_row(name, "missing", "", "")
            continue
        info = path.stat()
        table.add_row(name, f"{stat.S_IMODE(info.st_mode):04o}", _owner(info.st_uid),
                      "" if path.is_dir() else str(info.st_size))
    return table


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (e.g. inside a container)
        return str(uid)


keys.add_command(__import__("posgw.cli.keys_mac", fromlist=["mac"]).mac)  # posgw keys mac
