"""What a new branch (or a new center process) needs from head office, made once.

`posgw center enroll B001 gw-b001-1` (cli/center_enroll.py) calls this:

- broker credentials: a random password, printed once, and its line in
  mosquitto's password file (center/broker_access.py hashes it);
- the gateway's ACL block in mosquitto's ACL file: its own branch's topics;
- the center's public command key and a gateway.toml snippet naming all of it;
- with the gateway's signing.pub, its registration for its branch.

Re-running is safe and says what it did: an ACL block already as wanted is
left alone (one that differs is replaced), a user who already has a password
keeps it unless a new one is asked for, a key already registered stays so.
Files are rewritten whole through a temporary file and keep their mode and
owner (mosquitto must still be able to read them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from posgw.center.broker_access import new_password, password_line

USER_LINE = "user "
PATTERN_LINE = "pattern "
NEW_FILE_MODE = 0o640  # root:mosquitto, as docs/gateway/deploy.md installs them


class Change(StrEnum):
    ADDED = "added"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class PasswordOutcome:
    change: Change
    password: str | None  # the new password, when one was written


def set_password(path: Path, username: str, *, renew: bool) -> PasswordOutcome:
    """Give `username` a new random password in mosquitto's password file,
    unless it has one already and `renew` is false."""
    lines = _lines(path)
    index = next((i for i, line in enumerate(lines) if line.split(":", 1)[0] == username),
                 None)
    if index is not None and not renew:
        return PasswordOutcome(Change.UNCHANGED, None)
    password = new_password()
    line = password_line(username, password)
    if index is None:
        lines.append(line)
    else:
        lines[index] = line
    _write(path, lines)
    return PasswordOutcome(Change.ADDED if index is None else Change.REPLACED, password)


def set_acl_block(path: Path, block: str) -> Change:
    """Put `block` (starting `user NAME`) in mosquitto's ACL file, replacing
    that user's block if it differs."""
    wanted = block.strip().splitlines()
    lines = _lines(path)
    start = next((i for i, line in enumerate(lines) if line.strip() == wanted[0]), None)
    if start is None:
        _write(path, [*lines, *([""] if lines else []), *wanted])
        return Change.ADDED
    end = start + 1
    while end < len(lines) and not lines[end].startswith((USER_LINE, PATTERN_LINE)):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():  # keep the blank line after it
        end -= 1
    if [line.strip() for line in lines[start:end]] == wanted:
        return Change.UNCHANGED
    _write(path, [*lines[:start], *wanted, *lines[end:]])
    return Change.REPLACED


def gateway_toml_snippet(branch_id: str, gateway_id: str, *, host: str, port: int,
                         topic_prefix: str, center_public_key: str) -> str:
    """What to put in the branch's /etc/posgw/gateway.toml (the rest of it as
    deploy/gateway.example.toml has it)."""
    return (f'[gateway]\nbranch_id = "{branch_id}"\ngateway_id = "{gateway_id}"\n\n'
            f'[mqtt]\nhost = "{host}"\nport = {port}\ntopic_prefix = "{topic_prefix}"\n'
            'tls_ca = "/etc/posgw/ca.pem"          # the CA of the broker\'s certificate\n'
            f'username = "{gateway_id}"\n'
            "# the password: POSGW_MQTT_PASSWORD=... in /etc/posgw/gateway.env (mode 0600)\n\n"
            f'[keys]\ncenter_public_key = "{center_public_key}"\n')


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def _write(path: Path, lines: list[str]) -> None:
    """Through a temporary file in the same folder, keeping mode and owner."""
    try:
        before = path.stat()
        mode, owner = before.st_mode & 0o7777, (before.st_uid, before.st_gid)
    except FileNotFoundError:
        mode, owner = NEW_FILE_MODE, None
    temporary = path.with_name(f".{path.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.chmod(temporary, mode)  # not narrowed by the umask
        if owner is not None and hasattr(os, "chown"):
            os.chown(temporary, *owner)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
