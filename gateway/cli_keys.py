"""`posgw keys generate | show`: the gateway's key files, without ever printing a secret.

The layout and the writing (private files created 0600) belong to
`gateway.security.keys`; this module only parses options, tightens the
directory and reports. `show` prints identifiers derived one way from the
keys, never the keys: a SHA-256 fingerprint of the public signing key and a
check value (HMAC of a constant) for the token key.
"""

from __future__ import annotations

import hashlib
import hmac
import pwd
import stat
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.table import Table

from gateway.security.keys import (
    PUBLIC_KEY_FILE,
    SIGNING_KEY_FILE,
    TOKEN_KEY_FILE,
    KeyFileError,
    generate_keys,
    load_keys,
)

EXIT_BAD_INPUT = 2
EXIT_PROBLEM = 1
PRIVATE_FILES = (TOKEN_KEY_FILE, SIGNING_KEY_FILE)
#: Constant MAC'd under the token key to name it (a key check value, as
#: payment HSMs do for DES/AES keys): same key, same value; reveals nothing.
TOKEN_KCV_LABEL = b"posgw token key check value"


def _fail(what: str, reason: object) -> NoReturn:
    click.echo(f"posgw keys {what}: {reason}", err=True)
    sys.exit(EXIT_BAD_INPUT)


_DIR_OPTION = click.option(
    "--dir", "directory", required=True, metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="The keys directory ([keys] dir in gateway.toml, e.g. /var/lib/posgw/keys).")


@click.group()
def keys() -> None:
    """Generate or inspect the gateway's keys: the PAN token key (token.key),
    the Ed25519 signing key (signing.key) and its public half (signing.pub,
    the file the center needs)."""


@keys.command("generate")
@_DIR_OPTION
@click.option("--force", is_flag=True,
              help="Replace existing keys. Every card token changes and the center must be "
                   "given the new signing.pub.")
def keys_generate(directory: Path, force: bool) -> None:
    """Write fresh keys into DIR (created 0700 when missing); private files are 0600.

    Refuses to overwrite existing keys without --force.
    """
    try:
        # Missing parents get the default mode; the keys directory itself is
        # private so nobody else can even list it.
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        public_path = generate_keys(directory, overwrite=force)
    except KeyFileError as exc:  # generate_keys raises it only for a key already there
        _fail("generate", f"{exc.path}: already exists; --force replaces it (new token key: "
                          "new card tokens; new signing key: give the center the new "
                          f"{PUBLIC_KEY_FILE})")
    except OSError as exc:
        _fail("generate", f"{exc.filename or directory}: {exc.strerror}")
    click.echo(f"wrote {TOKEN_KEY_FILE}, {SIGNING_KEY_FILE} (0600) and {PUBLIC_KEY_FILE} "
               f"in {directory.resolve()}")
    click.echo(f"public key (give it to the center): {public_path.resolve()}")


@keys.command("show")
@_DIR_OPTION
def keys_show(directory: Path) -> None:
    """Key identifiers, file permissions and the public key PEM. Never prints
    private material.

    \b
    signing key fingerprint: SHA-256 of the public key's DER form, i.e.
      openssl pkey -pubin -in signing.pub -outform DER | sha256sum
    token key check value: first 16 hex digits of HMAC-SHA256(key, label).
    Exit status 1 when a private file is readable by others or signing.pub
    does not match signing.key; 2 when a key cannot be read.
    """
    try:
        loaded = load_keys(directory)
        token_key = bytes.fromhex((directory / TOKEN_KEY_FILE).read_text("ascii").strip())
    except KeyFileError as exc:
        _fail("show", exc)
    problems = _permission_problems(directory)
    public_file = directory / PUBLIC_KEY_FILE
    if not public_file.is_file() or public_file.read_bytes() != loaded.public_key_pem:
        problems.append(f"{public_file}: missing or not the public half of {SIGNING_KEY_FILE}")
    Console(highlight=False).print(_files_table(directory))
    # Plain echo, not rich: a fingerprint or PEM line must never be wrapped.
    click.echo(f"signing key: Ed25519, fingerprint sha256:{fingerprint(loaded.public_key_pem)}")
    click.echo(f"token key:   HMAC-SHA256, check value {token_check_value(token_key)}")
    click.echo(loaded.public_key_pem.decode("ascii").rstrip())
    for problem in problems:
        click.echo(f"posgw keys show: {problem}", err=True)
    if problems:
        sys.exit(EXIT_PROBLEM)


def fingerprint(public_pem: bytes) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def token_check_value(token_key: bytes) -> str:
    return hmac.new(token_key, TOKEN_KCV_LABEL, hashlib.sha256).hexdigest()[:16]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _permission_problems(directory: Path) -> list[str]:
    return [f"{directory / name}: mode {_mode(directory / name):04o}, must be 0600 "
            f"(chmod 600 {directory / name})"
            for name in PRIVATE_FILES if _mode(directory / name) & 0o077]


def _files_table(directory: Path) -> Table:
    table = Table("file", "mode", "owner", "bytes", box=None, pad_edge=False,
                  title=str(directory.resolve()), title_justify="left")
    for name in (".", *PRIVATE_FILES, PUBLIC_KEY_FILE):
        path = directory / name
        if not path.exists():
            table.add_row(name, "missing", "", "")
            continue
        info = path.stat()
        table.add_row(name, f"{stat.S_IMODE(info.st_mode):04o}", _owner(info.st_uid),
                      "" if name == "." else str(info.st_size))
    return table


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (e.g. inside a container)
        return str(uid)
