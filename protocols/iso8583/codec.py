"""The ISO 8583 message codec: MTI, bitmaps, data elements.

`Codec(spec)` compiles a MessageSpec once; `decode(bytes) -> Message` and
`encode(Message) -> bytes` then run a tight loop over per-field closures.
Whatever the input, decode raises only DecodeError and encode only
EncodeError: every lower-level failure is caught at the loop and reported
with the field and the offset where that field starts.
"""

from __future__ import annotations

from collections.abc import Callable

from .bitmap import build_bitmaps, fields_in
from .encodings import FieldValue
from .errors import DecodeError, EncodeError
from .fields import Decoder, Encoder, FieldCodec, compile_field
from .message import Message
from .spec import FieldSpec, MessageSpec

HIGHEST_FIELD = 192
#: ISO 8583 version digit (first MTI digit): 0 = 1987, 1 = 1993, 2 = 2003,
#: 8 = national use, 9 = private use.
MTI_VERSIONS = {"0": 1987, "1": 1993, "2": 2003, "8": 0, "9": 0}
_LOW_LEVEL_ERRORS = (ValueError, TypeError, LookupError, OverflowError)


class Codec:
    """Encoder and decoder for one dialect (a MessageSpec)."""

    __slots__ = ("_decoders", "_encoders", "_read_bitmap", "_read_mti", "_write_bitmap",
                 "_write_mti", "fields", "spec")

    def __init__(self, spec: MessageSpec) -> None:
        self.spec = spec
        self.fields: dict[int, FieldCodec] = {n: compile_field(f) for n, f in spec.fields.items()}
        self._decoders: list[Decoder] = [_undefined_decoder] * (HIGHEST_FIELD + 1)
        self._encoders: list[Encoder] = [_undefined_encoder] * (HIGHEST_FIELD + 1)
        for n, field in self.fields.items():
            self._decoders[n] = field.decode
            self._encoders[n] = field.encode
        self._encoders[1] = _implied_bitmap_encoder
        if spec.tertiary_bitmap:
            self._encoders[65] = _implied_bitmap_encoder
        self._read_mti, self._write_mti = _mti_codec(spec.mti_enc)
        self._read_bitmap, self._write_bitmap = _bitmap_codec(spec.bitmap_enc)

    def field_spec(self, number: int) -> FieldSpec | None:
        field = self.fields.get(number)
        return field.spec if field else None

    def decode(self, data: bytes | bytearray | memoryview) -> Message:
        """Decode one whole message (no length header, TPDU or envelope)."""
        if type(data) is not bytes:
            data = bytes(data)
        label: str | int = "MTI"
        pos = 0
        try:
            mti, pos = self._read_mti(data, 0)
            label = "bitmap"
            numbers, pos = self._read_bitmaps(data, pos)
            fields: dict[int, FieldValue] = {}
            decoders = self._decoders
            for label in numbers:
                fields[label], pos = decoders[label](data, pos)
        except _LOW_LEVEL_ERRORS as exc:
            raise DecodeError(str(label), pos, describe(exc)) from None
        if pos != len(data):
            raise DecodeError("end", pos, f"{len(data) - pos} bytes after the last field")
        return Message(mti, fields)

    def read_mti(self, data: bytes) -> str:
        """Just the MTI of a message whose body may not decode (to answer it 30)."""
        try:
            return self._read_mti(bytes(data), 0)[0]
        except _LOW_LEVEL_ERRORS as exc:
            raise DecodeError("MTI", 0, describe(exc)) from None

    def _read_bitmaps(self, data: bytes, pos: int) -> tuple[tuple[int, ...], int]:
        primary, pos = self._read_bitmap(data, pos)
        numbers = fields_in(primary, 0)
        if not primary[0] & 0x80:
            return numbers, pos
        secondary, pos = self._read_bitmap(data, pos)
        numbers = numbers[1:] + fields_in(secondary, 8)
        if self.spec.tertiary_bitmap and secondary[0] & 0x80:
            tertiary, pos = self._read_bitmap(data, pos)
            numbers = tuple(n for n in numbers if n != 65) + fields_in(tertiary, 16)
        return numbers, pos

    def encode(self, message: Message) -> bytes:
        """Encode a message; the bitmaps follow from the fields present."""
        fields = message.fields
        label: str | int = "MTI"
        try:
            numbers = sorted(fields)
            if numbers and (numbers[0] < 1 or numbers[-1] > HIGHEST_FIELD):
                label = numbers[0] if numbers[0] < 1 else numbers[-1]
                raise ValueError("field number out of range 2..192")
            parts = [self._write_mti(message.mti), b""]
            encoders = self._encoders
            for label in numbers:
                parts.append(encoders[label](fields[label]))
            label = "bitmap"
            parts[1] = self._write_bitmap(build_bitmaps(numbers))
        except _LOW_LEVEL_ERRORS as exc:
            raise EncodeError(str(label), describe(exc)) from None
        return b"".join(parts)


def describe(exc: BaseException) -> str:
    """A reason for an error report that never quotes field data."""
    if isinstance(exc, UnicodeError):
        return "bytes invalid in the field's character encoding"
    if isinstance(exc, ValueError) and str(exc).startswith("invalid literal"):
        return "not a number"
    return str(exc) or type(exc).__name__


def _undefined_decoder(data: bytes, pos: int) -> tuple[FieldValue, int]:
    raise ValueError("field not defined in this profile")


def _undefined_encoder(value: FieldValue) -> bytes:
    raise ValueError("field not defined in this profile")


def _implied_bitmap_encoder(value: FieldValue) -> bytes:
    raise ValueError("bitmap fields are implied by the fields present; do not set them")


MtiReader = Callable[[bytes, int], tuple[str, int]]
MtiWriter = Callable[[str], bytes]


def _mti_codec(enc: str) -> tuple[MtiReader, MtiWriter]:
    size = 2 if enc == "bcd" else 4
    codec = "cp500" if enc == "ebcdic" else "ascii"

    def read_mti(data: bytes, pos: int) -> tuple[str, int]:
        raw = data[pos : pos + size]
        mti = raw.hex() if enc == "bcd" else raw.decode(codec)
        if len(mti) != 4 or not mti.isdigit() or mti[0] not in MTI_VERSIONS:
            raise ValueError("MTI must be 4 digits with version digit 0, 1, 2, 8 or 9")
        return mti, pos + size

    def write_mti(mti: str) -> bytes:
        if type(mti) is not str or len(mti) != 4 or not mti.isdigit() or not mti.isascii():
            raise ValueError("MTI must be 4 digits")
        return bytes.fromhex(mti) if enc == "bcd" else mti.encode(codec)

    return read_mti, write_mti


BitmapReader = Callable[[bytes, int], tuple[bytes, int]]
BitmapWriter = Callable[[bytes], bytes]


def _bitmap_codec(enc: str) -> tuple[BitmapReader, BitmapWriter]:
    if enc == "binary":

        def read_binary(data: bytes, pos: int) -> tuple[bytes, int]:
            end = pos + 8
            if end > len(data):
                raise ValueError("bitmap truncated")
            return data[pos:end], end

        return read_binary, _same_bytes

    def read_hex(data: bytes, pos: int) -> tuple[bytes, int]:
        end = pos + 16
        bitmap = bytes.fromhex(data[pos:end].decode("ascii"))
        if len(bitmap) != 8:
            raise ValueError("bitmap must be 16 hex characters")
        return bitmap, end

    return read_hex, _hex_upper


def _same_bytes(raw: bytes) -> bytes:
    return raw


def _hex_upper(raw: bytes) -> bytes:
    return raw.hex().upper().encode("ascii")
