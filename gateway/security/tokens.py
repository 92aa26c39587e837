"""PAN tokens: HMAC-SHA256 of the PAN digits under the gateway token key.

The token is the first 32 hex characters (128 bits) of the HMAC: enough to
make collisions between the cards of a branch network negligible, short
enough to index. It is stable for one key, so risk rules and the center can
follow one card without ever holding its number, and useless without the
key (a bare SHA-256 of a PAN can be brute-forced over the ~10^9 PANs of a
BIN range).
"""

from __future__ import annotations

import hashlib
import hmac

from posgw.protocols.normalize import CardNumber

TOKEN_HEX_CHARS = 32
MIN_KEY_BYTES = 32  # HMAC-SHA256 key as long as the hash output (RFC 2104 §3)


class PanTokenizer:
    """Turns a `CardNumber` into its keyed token; holds the key, never shows it."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"token key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def token(self, card: CardNumber) -> str:
        digest = hmac.new(self._key, card.digits_for_tokenizing().encode("ascii"),
                          hashlib.sha256)
        return digest.hexdigest()[:TOKEN_HEX_CHARS]

    def __repr__(self) -> str:
        return "PanTokenizer(key=***)"
