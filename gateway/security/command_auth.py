"""Who may command this gateway: signed `cmd` messages (`[keys] center_public_key`).

Without a configured center key every command the broker delivers is
obeyed, and the broker's ACL on `cmd` is the only guard (the behaviour
before signatures existed). With one, a command must carry an Ed25519
`signature` over its canonical JSON (the scheme of the gateway's own
events) made by the center's key, or by this gateway's own signing key,
which `posgw cases` on the gateway's host signs with. Anything else is
answered `rejected` and changes nothing: a frozen sale's funds are not
released by whoever can publish on the broker.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from posgw.gateway.security.signing import SIGNATURE_KEY
from posgw.protocols.canonical_json import canonical_json, without_signature


class CommandKeyError(ValueError):
    """A center public key file that cannot be used; says which and why."""


def load_center_public_key(path: str | Path) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise CommandKeyError(f"{path}: {exc.strerror or 'cannot read'}") from None
    except (ValueError, TypeError):
        raise CommandKeyError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CommandKeyError(f"{path}: not an Ed25519 public key")
    return key


class CommandAuthenticator:
    """`refusal(command)`: None when a trusted key signed it, else why not.

    The one place the center's signature is verified: on commands, and (with
    the center's key alone trusted, `what="confirmation"`) on confirm.v1.
    """

    def __init__(self, trusted: Sequence[Ed25519PublicKey], *, what: str = "command") -> None:
        if not trusted:
            raise ValueError("a command authenticator needs at least one trusted key")
        self._trusted = tuple(trusted)
        self._what = what

    def refusal(self, command: Mapping[str, Any]) -> str | None:
        signature = command.get(SIGNATURE_KEY)
        if not isinstance(signature, str):
            return f"unsigned {self._what}: this gateway obeys only signed {self._what}s"
        try:
            raw = base64.b64decode(signature, validate=True)
            body = canonical_json(without_signature(command))
        except ValueError:  # binascii.Error and CanonicalJsonError are ValueErrors
            return "signature is not base64 over canonical JSON"
        for key in self._trusted:
            try:
                key.verify(raw, body)
            except InvalidSignature:
                continue
            return None
        return "signature does not verify with the center's key"
