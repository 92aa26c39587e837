"""What the broker needs to know about each client: password-file lines and ACL blocks.

The deployment's mosquitto (deploy/mosquitto/posgw.conf) admits no
anonymous client, makes each client's id its user name, and reads what
each user may publish and subscribe to from an ACL file. This module
writes the lines of those files for the center and for one gateway; `posgw
center enroll` prints them and `posgw demo` runs its broker with them. The
ACL is the broker's half of "a gateway speaks only for its own branch"; the
center checks the same thing again on every event (center/ingest.py).

Passwords are hashed here, in mosquitto 2.0's own `$7$` format
(PBKDF2-HMAC-SHA512, base64 salt and hash, as `mosquitto_passwd` writes
it), rather than by running `mosquitto_passwd -b`, which would put the
password on a command line any local user can read in `ps`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from posgw.protocols.contract import (
    TopicKind,
    cases_topic,
    command_reply_topic,
    command_topic,
    confirm_topic,
    reconciliation_topic,
    terminal_status_topic,
    tx_topic,
)

#: mosquitto_passwd's default is 101 iterations; the broker reads the count
#: from each line, so a stronger one costs only a few ms per CONNECT.
PASSWORD_ITERATIONS = 20_000
SALT_BYTES = 12  # what mosquitto_passwd uses
#: 32 random bytes, URL-safe: no character a TOML string or shell needs escaped.
PASSWORD_BYTES = 32
ANY = "+"


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def password_line(username: str, password: str, *, salt: bytes | None = None,
                  iterations: int = PASSWORD_ITERATIONS) -> str:
    """One line of mosquitto's password_file (mosquitto 2.0 or later)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return (f"{username}:$7${iterations}${base64.b64encode(salt).decode('ascii')}"
            f"${base64.b64encode(digest).decode('ascii')}")


def gateway_acl(prefix: str, branch_id: str, gateway_id: str) -> str:
    """A gateway publishes only its own branch's topics and reads only its
    branch's commands and its own confirmations."""
    writes = [tx_topic(prefix, branch_id, ANY), reconciliation_topic(prefix, branch_id, ANY),
              terminal_status_topic(prefix, branch_id, ANY),  # also gateway/status, its Will
              cases_topic(prefix, branch_id), command_reply_topic(prefix, branch_id)]
    reads = [command_topic(prefix, branch_id), confirm_topic(prefix, branch_id, gateway_id)]
    return _block(gateway_id, writes, reads)


def center_acl(prefix: str, username: str) -> str:
    """The center reads what every gateway sends and writes commands and
    confirmations to every branch."""
    reads = [tx_topic(prefix, ANY, ANY), reconciliation_topic(prefix, ANY, ANY),
             terminal_status_topic(prefix, ANY, ANY), cases_topic(prefix, ANY),
             command_reply_topic(prefix, ANY)]
    writes = [command_topic(prefix, ANY), f"{prefix}/{ANY}/{ANY}/{TopicKind.CONFIRM}"]
    # Reads first in the center's block: it is mostly a reader.
    return "\n".join([f"user {username}", *(f"topic read {t}" for t in reads),
                      *(f"topic write {t}" for t in writes)]) + "\n"


def _block(username: str, writes: list[str], reads: list[str]) -> str:
    return "\n".join([f"user {username}", *(f"topic write {t}" for t in writes),
                      *(f"topic read {t}" for t in reads)]) + "\n"
