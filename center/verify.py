"""Ed25519 verification of gateway payloads (the center's own, minimal copy
of the check: it shares only canonical JSON with the gateway)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from protocols.canonical_json import CanonicalJsonError, canonical_json, without_signature

#: Longest gateway_id quoted in a quarantine reason (the schema's maximum).
MAX_SHOWN_ID = 64


class BadPayload(Exception):
    """Why a payload was quarantined (never contains payload contents)."""


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    key = load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


class SignatureVerifier:
    """Trusts only the registered gateways: the payload's `gateway_id` picks
    the key, and a gateway that is not registered is rejected (quarantined),
    never checked against some other gateway's key."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    @property
    def gateway_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            raise BadPayload("payload is not a JSON object")
        key = self._keys.get(str(payload.get("gateway_id")))
        if key is None:
            raise BadPayload(_unknown_gateway(payload.get("gateway_id")))
        signature = payload.get("signature")
        if not isinstance(signature, str):
            raise BadPayload("missing signature")
        try:
            key.verify(base64.b64decode(signature, validate=True),
                       canonical_json(without_signature(payload)))
        except (binascii.Error, ValueError):
            raise BadPayload("signature is not base64") from None
        except CanonicalJsonError as exc:
            raise BadPayload(f"not canonical JSON: {exc}") from None
        except InvalidSignature:
            raise BadPayload("bad signature") from None


def _unknown_gateway(gateway_id: object) -> str:
    """Names the gateway so the operator knows whom to register, but only when
    the value looks like an identifier (the payload is untrusted)."""
    if (isinstance(gateway_id, str) and 0 < len(gateway_id) <= MAX_SHOWN_ID
            and all(c.isascii() and (c.isalnum() or c in "-_.") for c in gateway_id)):
        return f"unknown gateway_id {gateway_id!r}: not registered in [[gateways]]"
    return "unknown gateway_id: missing or not an identifier"
