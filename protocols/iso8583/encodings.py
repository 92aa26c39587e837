"""Value converters: one field's data bytes <-> its Python value.

Each converter pair is chosen once per field when a spec is compiled:
`to_value(raw, units)` turns the data bytes into str/bytes, `from_value(v)`
validates a value and returns `(raw, units)`. Both signal bad content with
`ValueError(reason)`; the codec adds the field number and offset. Reasons
never quote field data, which may hold a PAN.
"""

from __future__ import annotations

from collections.abc import Callable
from string import ascii_letters, digits

from .spec import FieldSpec

FieldValue = str | bytes
ToValue = Callable[[bytes, int], FieldValue]
FromValue = Callable[[FieldValue], tuple[bytes, int]]
ByteCount = Callable[[int], int]

_CHARSETS = {
    "a": frozenset(ascii_letters + " "),
    "an": frozenset(ascii_letters + digits + " "),
    # Track 2/3 code set: digits, field separator '=' (or 'D'), sentinels.
    "z": frozenset(digits + "=D;?"),
}
_BCD_TRACK = frozenset(digits + "D")


def converters(spec: FieldSpec) -> tuple[ToValue, FromValue, ByteCount]:
    """The value converters and the units -> bytes rule for `spec`."""
    if spec.enc == "binary":
        return _binary_to_value, _binary_from_value, _same
    if spec.enc == "hex":
        return _hex_converters(spec.unit == "bytes")
    if spec.enc == "bcd":
        return _bcd_converters(spec)
    codec = "ascii" if spec.enc == "ascii" else spec.codepage
    return _text_to_value(codec, spec.type), _text_from_value(codec, spec.type), _same


def _same(units: int) -> int:
    return units


def text_predicate(type_: str) -> Callable[[str], bool]:
    """A fast test that a str holds only characters of `type_`."""
    if type_ == "n":
        return _is_digits
    if type_ == "ans":
        return _is_printable_ascii
    if type_ == "xn":
        return _is_signed_amount
    return _CHARSETS[type_].issuperset


def _is_digits(value: str) -> bool:
    return value.isdigit() and value.isascii()


def _is_printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _is_signed_amount(value: str) -> bool:
    digits = value[1:]
    return value[:1] in ("C", "D") and (digits.isdigit() or not digits) and value.isascii()


def check_text(type_: str, value: str) -> None:
    """Raise ValueError unless `value` is in the character set of `type_`."""
    if value and not text_predicate(type_)(value):
        raise ValueError(f"characters outside type {type_}")


def _text_to_value(codec: str, type_: str) -> ToValue:
    if codec == "ascii" and type_ == "n":

        def ascii_digits(raw: bytes, units: int) -> FieldValue:
            if raw and not raw.isdigit():
                raise ValueError("non-digit in numeric field")
            return raw.decode("ascii")

        return ascii_digits
    if codec == "ascii":

        def ascii_text(raw: bytes, units: int) -> FieldValue:
            return raw.decode("ascii")

        return ascii_text

    def ebcdic_text(raw: bytes, units: int) -> FieldValue:
        text = raw.decode(codec)
        if type_ == "n" and text and not (text.isdigit() and text.isascii()):
            raise ValueError("non-digit in numeric field")
        return text

    return ebcdic_text


def _text_from_value(codec: str, type_: str) -> FromValue:
    def text_bytes(value: FieldValue) -> tuple[bytes, int]:
        if type(value) is not str:
            raise ValueError(f"type {type_} takes str, got {type(value).__name__}")
        check_text(type_, value)
        return value.encode(codec), len(value)

    return text_bytes


def _binary_to_value(raw: bytes, units: int) -> FieldValue:
    return raw


def _binary_from_value(value: FieldValue) -> tuple[bytes, int]:
    if type(value) is not bytes:
        raise ValueError(f"type b takes bytes, got {type(value).__name__}")
    return value, len(value)


def _hex_converters(units_are_bytes: bool) -> tuple[ToValue, FromValue, ByteCount]:
    """Binary carried as hex-ASCII: two characters per byte."""

    def hex_to_value(raw: bytes, units: int) -> FieldValue:
        value = bytes.fromhex(raw.decode("ascii"))
        if len(value) * 2 != len(raw):  # fromhex skips whitespace: refuse it
            raise ValueError("not hex digits")
        return value

    def hex_from_value(value: FieldValue) -> tuple[bytes, int]:
        raw, _ = _binary_from_value(value)
        return raw.hex().upper().encode("ascii"), len(raw) if units_are_bytes else 2 * len(raw)

    def hex_bytes(units: int) -> int:
        if units_are_bytes:
            return 2 * units
        if units & 1:
            raise ValueError("odd hex length")
        return units

    return hex_to_value, hex_from_value, hex_bytes


def _bcd_converters(spec: FieldSpec) -> tuple[ToValue, FromValue, ByteCount]:
    """Packed BCD, two digits a byte; an odd count is padded left or right."""
    pad_left, pad_nibble, type_ = spec.pad_left, spec.pad_nibble, spec.type
    units_are_bytes = spec.unit == "bytes"
    sign = 1 if type_ == "xn" else 0  # xn: one ASCII 'C'/'D' byte, then BCD

    def bcd_bytes(units: int) -> int:
        return units if units_are_bytes else sign + (units - sign + 1) // 2

    def bcd_to_value(raw: bytes, units: int) -> FieldValue:
        nibbles = raw[sign:].hex()
        count = len(nibbles) if units_are_bytes else units - sign
        if len(nibbles) > count:
            nibbles = nibbles[len(nibbles) - count :] if pad_left else nibbles[:count]
        if type_ == "z":
            text = nibbles.upper()
            if not _BCD_TRACK.issuperset(text):
                raise ValueError("bad track nibble")
            return text.replace("D", "=")
        if not nibbles.isdigit() and nibbles:
            raise ValueError("bad BCD digit")
        return raw[:sign].decode("ascii") + nibbles if sign else nibbles

    def bcd_from_value(value: FieldValue) -> tuple[bytes, int]:
        if type(value) is not str:
            raise ValueError(f"type {type_} takes str, got {type(value).__name__}")
        check_text(type_, value)
        nibbles = value[sign:].replace("=", "D")
        if len(nibbles) & 1:
            nibbles = "0" + nibbles if pad_left else nibbles + pad_nibble
        raw = value[:sign].encode("ascii") + bytes.fromhex(nibbles)
        return raw, len(raw) if units_are_bytes else len(value)

    return bcd_to_value, bcd_from_value, bcd_bytes
