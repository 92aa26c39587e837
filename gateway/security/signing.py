"""The one place that signs gateway→center payloads (Ed25519).

The signature covers the canonical JSON (protocols.canonical_json) of the
payload without its `signature` key and is stored in that key as standard
base64. Ed25519 signatures are deterministic, so re-signing an event for a
re-publish yields the same bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from posgw.protocols.canonical_json import canonical_json, without_signature

SIGNATURE_KEY = "signature"
_SIGNATURE_MEMBER = f'"{SIGNATURE_KEY}":"'.encode("ascii")


class PayloadSigner:
    __slots__ = ("_key",)

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `payload` with its `signature` set (any old one replaced)."""
        body = without_signature(payload)
        signature = self._key.sign(canonical_json(body))
        return {**body, SIGNATURE_KEY: base64.b64encode(signature).decode("ascii")}

    def seal(self, payload: Mapping[str, Any]) -> bytes:
        """`payload` signed, as the bytes to publish: the body's canonical JSON
        with `signature` appended as its last member.

        One serialization instead of two (sign, then serialize the signed
        copy): the center re-canonicalizes what it receives before
        verifying, so the member order on the wire is free.
        """
        body = canonical_json(without_signature(payload))
        signature = base64.b64encode(self._key.sign(body))
        separator = b"," if body != b"{}" else b""
        return b"".join((body[:-1], separator, _SIGNATURE_MEMBER, signature, b'"}'))

    def __repr__(self) -> str:
        return "PayloadSigner(key=***)"
