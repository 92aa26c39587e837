"""Ed25519 verification of gateway payloads (the center's own, minimal copy
of the check: it shares only canonical JSON with the gateway)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from posgw.protocols.canonical_json import CanonicalJsonError, canonical_json, without_signature

#: Longest gateway_id quoted in a quarantine reason (the schema's maximum).
MAX_SHOWN_ID = 64


class QuarantineKind(StrEnum):
    """Why a payload was quarantined, as a class to count by (`posgw center
    quarantine`); the reason text has the details."""

    NOT_JSON = "not_json"
    UNREGISTERED = "unregistered"  # no trusted key for its gateway_id
    REVOKED = "revoked"  # its gateway's key was revoked
    BAD_SIGNATURE = "bad_signature"  # missing, not base64, or does not verify
    MALFORMED = "malformed"  # not canonical, wrong schema, status, fields or types
    REPLAY = "replay"  # its gateway's seq is stored under another event_id
    FUTURE = "future"  # occurred_at beyond the clock-skew tolerance
    STALE = "stale"  # occurred_at older than the maximum event age
    NOT_STORABLE = "not_storable"  # a value the events table cannot hold
    WRONG_BRANCH = "wrong_branch"  # its branch or topic is not its gateway's registered branch
    OVERSIZED = "oversized"  # larger than the ingest reads (junk, or a flood)


class BadPayload(Exception):
    """Why a payload was quarantined (never contains payload contents)."""

    def __init__(self, reason: str, kind: QuarantineKind = QuarantineKind.MALFORMED) -> None:
        super().__init__(reason)
        self.kind = kind


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    key = load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex: what `posgw keys show`
    prints on the gateway, so an operator can compare the two."""
    return hashlib.sha256(key.public_bytes(Encoding.DER,
                                           PublicFormat.SubjectPublicKeyInfo)).hexdigest()


_Keys = Mapping[str, Ed25519PublicKey | Sequence[Ed25519PublicKey]]


class SignatureVerifier:
    """Trusts only the registered gateways: the payload's `gateway_id` picks
    its keys (several while a key is being rotated), and a gateway that is
    not registered is rejected (quarantined), never checked against some
    other gateway's key. `revoked` keys are named in the reason, never
    trusted.

    `branches` (gateway_id -> branch_id, from its registration): a signed
    payload must claim its gateway's own branch, so one branch's gateway
    key cannot speak for another branch (issue 17, finding 6); a gateway
    with no branch registered is refused. None checks signatures only (for
    tools and tests that verify, not ingest).
    """

    def __init__(self, keys: _Keys, revoked: _Keys | None = None,
                 branches: Mapping[str, str] | None = None) -> None:
        self._keys = _as_lists(keys)
        self._revoked = _as_lists(revoked or {})
        self._branches = None if branches is None else dict(branches)

    @property
    def gateway_ids(self) -> frozenset[str]:
        return frozenset(gateway_id for gateway_id, keys in self._keys.items() if keys)

    def verify(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            raise BadPayload("payload is not a JSON object")
        gateway_id = payload.get("gateway_id")
        keys = self._keys.get(str(gateway_id), [])
        if not keys:
            if self._revoked.get(str(gateway_id)):
                raise BadPayload(f"gateway {_shown(gateway_id)} is revoked",
                                 QuarantineKind.REVOKED)
            raise BadPayload(_unknown_gateway(gateway_id), QuarantineKind.UNREGISTERED)
        signature, body = _signature_and_body(payload)
        if any(_verifies(key, signature, body) for key in keys):
            self._check_branch(str(gateway_id), payload.get("branch_id"))
            return
        revoked = [key for key in self._revoked.get(str(gateway_id), [])
                   if _verifies(key, signature, body)]
        if revoked:
            raise BadPayload(f"signed with a revoked key of gateway {_shown(gateway_id)} "
                             f"(sha256:{key_fingerprint(revoked[0])})", QuarantineKind.REVOKED)
        raise BadPayload("bad signature", QuarantineKind.BAD_SIGNATURE)

    def _check_branch(self, gateway_id: str, claimed: object) -> None:
        if self._branches is None:
            return
        registered = self._branches.get(gateway_id)
        if registered is None:
            raise BadPayload(f"gateway {_shown(gateway_id)} has no branch registered "
                             "([[gateways]] branch_id, or `gateways register --branch`)",
                             QuarantineKind.WRONG_BRANCH)
        if claimed != registered:
            raise BadPayload(f"gateway {_shown(gateway_id)} is registered for branch "
                             f"{registered}, the payload claims {_shown(claimed)}",
                             QuarantineKind.WRONG_BRANCH)


def _signature_and_body(payload: dict[str, Any]) -> tuple[bytes, bytes]:
    signature = payload.get("signature")
    if not isinstance(signature, str):
        raise BadPayload("missing signature", QuarantineKind.BAD_SIGNATURE)
    try:
        decoded = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise BadPayload("signature is not base64", QuarantineKind.BAD_SIGNATURE) from None
    try:
        return decoded, canonical_json(without_signature(payload))
    except CanonicalJsonError as exc:
        raise BadPayload(f"not canonical JSON: {exc}") from None


def _verifies(key: Ed25519PublicKey, signature: bytes, body: bytes) -> bool:
    try:
        key.verify(signature, body)
    except InvalidSignature:
        return False
    return True


def _as_lists(keys: _Keys) -> dict[str, list[Ed25519PublicKey]]:
    return {gateway_id: [value] if isinstance(value, Ed25519PublicKey) else list(value)
            for gateway_id, value in keys.items()}


def _shown(gateway_id: object) -> str:
    """The gateway_id quoted, when it looks like an identifier (the payload is
    untrusted: nothing else of it goes into a reason)."""
    if (isinstance(gateway_id, str) and 0 < len(gateway_id) <= MAX_SHOWN_ID
            and all(c.isascii() and (c.isalnum() or c in "-_.") for c in gateway_id)):
        return repr(gateway_id)
    return "(not an identifier)"


def _unknown_gateway(gateway_id: object) -> str:
    """Names the gateway so the operator knows whom to register."""
    shown = _shown(gateway_id)
    if shown.startswith("("):
        return "unknown gateway_id: missing or not an identifier"
    return (f"unknown gateway_id {shown}: not registered (center.toml [[gateways]] or "
            "`posgw center gateways register`)")
