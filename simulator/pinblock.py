"""ISO 9564-1 format 0 PIN blocks, encrypted under a test terminal PIN key.

Format 0 (ANSI X9.8): PIN field ``0 | PIN length | PIN | F...F`` (16 hex
digits) XOR PAN field ``0000 | the 12 rightmost PAN digits without the
check digit``. The clear block is encrypted with TDES-ECB under the
terminal's PIN encryption key; the host decrypts and compares.

`TEST_PIN_KEY` is the classic double-length test key 0123456789ABCDEF
FEDCBA9876543210 (used across payment test suites); it protects nothing
and must never be used outside simulation. The PIN block itself is never
logged: callers mask it with `protocols.redact.mask_secret`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, modes

try:  # cryptography >= 43 moved TDES to "decrepit"; the old path warns
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

TEST_PIN_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
_BLOCK_DIGITS = 16
_PAN_DIGITS_USED = 12


class PinBlockError(ValueError):
    """A PIN or PAN that cannot make a format 0 block, or a block that is not one."""


def pin_field(pin: str) -> bytes:
    """`0 | length | PIN | F padding`, as 8 bytes."""
    if not (4 <= len(pin) <= 12 and pin.isascii() and pin.isdigit()):
        raise PinBlockError("a PIN is 4 to 12 digits")
    digits = f"0{len(pin):X}{pin}".ljust(_BLOCK_DIGITS, "F")
    return bytes.fromhex(digits)


def pan_field(pan: str) -> bytes:
    """`0000 | 12 rightmost PAN digits excluding the check digit`, as 8 bytes."""
    if not (len(pan) >= _PAN_DIGITS_USED + 1 and pan.isascii() and pan.isdigit()):
        raise PinBlockError("a PAN of at least 13 digits is needed")
    return bytes.fromhex("0000" + pan[-_PAN_DIGITS_USED - 1 : -1])


def clear_pin_block(pin: str, pan: str) -> bytes:
    """The format 0 block before encryption."""
    return bytes(a ^ b for a, b in zip(pin_field(pin), pan_field(pan), strict=True))


def encrypt_pin_block(pin: str, pan: str, key: bytes = TEST_PIN_KEY) -> bytes:
    """Field 52: the format 0 block under TDES-ECB."""
    encryptor = _cipher(key).encryptor()
    return encryptor.update(clear_pin_block(pin, pan)) + encryptor.finalize()


def decrypt_pin(block: bytes, pan: str, key: bytes = TEST_PIN_KEY) -> str:
    """The PIN inside an encrypted format 0 block; raises PinBlockError if malformed."""
    if len(block) != 8:
        raise PinBlockError("a PIN block is 8 bytes")
    decryptor = _cipher(key).decryptor()
    clear = decryptor.update(block) + decryptor.finalize()
    digits = bytes(a ^ b for a, b in zip(clear, pan_field(pan), strict=True)).hex().upper()
    length = int(digits[1], 16)
    pin, padding = digits[2 : 2 + length], digits[2 + length :]
    if digits[0] != "0" or not 4 <= length <= 12 or not pin.isdigit() or set(padding) != {"F"}:
        raise PinBlockError("not a format 0 PIN block for this PAN and key")
    return pin


def verify_pin(block: bytes, pan: str, expected_pin: str, key: bytes = TEST_PIN_KEY) -> bool:
    """True when the block holds `expected_pin`; a malformed block is a wrong PIN."""
    try:
        return decrypt_pin(block, pan, key) == expected_pin
    except PinBlockError:
        return False


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    # A double-length key K1|K2 is triple-length K1|K2|K1 (ANSI X9.52 keying
    # option 2); spelling it out avoids cryptography's two-key deprecation.
    triple = key + key[:8] if len(key) == 16 else key
    return Cipher(TripleDES(triple), modes.ECB())
