"""The two MAC algorithms terminals use, and what identifies a MAC key.

- ISO/IEC 9797-1 MAC algorithm 3 with DES, the "retail MAC" (ANSI X9.19):
  CBC-MAC under K with a zero IV (initial transformation 1), then output
  transformation 3, G = e_K(d_K'(H_q)), over a double-length key K || K'.
  Padding method 1 (zero bits) or 2 (one 1 bit, then zero bits).
- AES-CMAC (NIST SP 800-38B, RFC 4493), truncated to its leftmost 64 bits:
  the ISO 8583 MAC fields 64 and 128 are 8 bytes, and SP 800-38B §5.3 and
  appendix A allow a 64-bit tag.

The block ciphers come from `cryptography`, which does no I/O: this module
stays sans-IO like the rest of `protocols/`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

try:  # cryptography >= 43 moved (triple) DES to "decrepit"; the old path warns
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

#: Fields 64 and 128 hold 8 bytes (ISO 8583:1987 and 1993, type b 64 bits).
MAC_LENGTH = 8
DES_BLOCK = 8
RETAIL_KEY_LENGTH = 16  # K || K'
AES_KEY_LENGTHS = (16, 24, 32)
PADDING_METHODS = (1, 2)
#: Key check values: the leftmost 3 bytes (6 hex digits), as payment HSMs
#: print them; X9.24-1 and PCI PIN 15-1 allow at most 24 bits for the TDEA
#: encrypt-zeros method and at most 40 for CMAC.
KCV_BYTES = 3


class MacError(ValueError):
    """A key or input the MAC algorithms cannot take (our configuration, not the peer)."""


class MacAlgorithm(StrEnum):
    RETAIL = "iso9797-1-alg3"
    AES_CMAC = "aes-cmac"


@dataclass(frozen=True, slots=True)
class MacKey:
    """One terminal MAC key; its bytes never appear in a repr or a log."""

    algorithm: MacAlgorithm
    key: bytes = field(repr=False)
    key_id: int = 1

    def __post_init__(self) -> None:
        check_key(self.algorithm, self.key)

    @property
    def check_value(self) -> str:
        return key_check_value(self.algorithm, self.key)


def check_key(algorithm: MacAlgorithm, key: bytes) -> None:
    """Raise MacError when `key` cannot be a key for `algorithm`."""
    if algorithm is MacAlgorithm.RETAIL:
        if len(key) != RETAIL_KEY_LENGTH:
            raise MacError(f"{algorithm} takes a double-length key of 16 bytes (K || K')")
        if key[:8] == key[8:]:
            # Equal halves collapse algorithm 3 into a single-DES CBC-MAC.
            raise MacError(f"{algorithm}: K and K' must differ")
    elif len(key) not in AES_KEY_LENGTHS:
        raise MacError(f"{algorithm} takes an AES key of 16, 24 or 32 bytes")


def compute_mac(key: MacKey, data: bytes, padding: int = 1) -> bytes:
    """The 8-byte MAC of `data`; `padding` (ISO 9797-1 method 1 or 2) is for the
    retail MAC only, CMAC pads by its own rule."""
    if key.algorithm is MacAlgorithm.RETAIL:
        return retail_mac(key.key, data, padding)
    return aes_cmac(key.key, data)[:MAC_LENGTH]


def retail_mac(key: bytes, data: bytes, padding: int = 1) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES, full 64-bit output."""
    check_key(MacAlgorithm.RETAIL, key)
    left, right = key[:8], key[8:]
    padded = pad(data, padding)
    cbc = Cipher(_single_des(left), modes.CBC(bytes(DES_BLOCK))).encryptor()
    chained = cbc.update(padded) + cbc.finalize()
    last = chained[-DES_BLOCK:]
    decrypted = _ecb(right, last, encrypt=False)
    return _ecb(left, decrypted, encrypt=True)


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """NIST SP 800-38B CMAC with AES, the full 16-byte tag."""
    check_key(MacAlgorithm.AES_CMAC, key)
    cmac = CMAC(algorithms.AES(key))
    cmac.update(data)
    return cmac.finalize()


def pad(data: bytes, method: int) -> bytes:
    """ISO/IEC 9797-1 padding to whole DES blocks.

    Method 1 adds as few zero bytes as needed, at least one block for empty
    data (the padded string must be a positive number of blocks); method 2
    always adds 0x80, then zeros.
    """
    if method not in PADDING_METHODS:
        raise MacError(f"padding method must be 1 or 2; got {method!r}")
    if method == 2:
        data += b"\x80"
    elif not data:
        return bytes(DES_BLOCK)
    return data + bytes(-len(data) % DES_BLOCK)


def key_check_value(algorithm: MacAlgorithm, key: bytes) -> str:
    """6 hex digits naming `key` without revealing it.

    TDEA: the key (K, K', K) encrypts a zero block; AES: the CMAC of a zero
    block (X9.24-1: AES keys use only the CMAC method).
    """
    check_key(algorithm, key)
    if algorithm is MacAlgorithm.RETAIL:
        ede = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
        value = ede.update(bytes(DES_BLOCK)) + ede.finalize()
    else:
        value = aes_cmac(key, bytes(16))
    return value[:KCV_BYTES].hex().upper()


def macs_equal(expected: bytes, received: bytes) -> bool:
    """Compare in constant time: a timing difference would let a forger learn
    the MAC byte by byte."""
    return hmac.compare_digest(expected, received)


def _single_des(key: bytes) -> TripleDES:
    # Triple DES with K, K, K is single DES (EDE collapses); cryptography has
    # no single-DES cipher of its own.
    return TripleDES(key * 3)


def _ecb(key: bytes, block: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(_single_des(key), modes.ECB())
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(block) + context.finalize()
