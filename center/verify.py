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


class BadPayload(Exception):
    """Why a payload was quarantined (never contains payload contents)."""


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    key = load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


class SignatureVerifier:
    """Trusted keys by gateway_id; `default` serves gateways not listed."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey] | None = None,
                 default: Ed25519PublicKey | None = None) -> None:
        self._keys = dict(keys or {})
        self._default = default

    def verify(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            raise BadPayload("payload is not a JSON object")
        key = self._keys.get(str(payload.get("gateway_id")), self._default)
        if key is None:
            raise BadPayload("unknown gateway_id")
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
