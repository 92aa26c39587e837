"""Compile a FieldSpec into a decoder and an encoder.

Everything that depends only on the spec (byte counts, prefix reader,
converters, padding) is bound into closures here, once, so decoding a field
is a slice, a length check and one conversion — no dictionary lookups and no
branching on spec keys in the per-message loop (the pyiso8583 lesson).

Decoders: `decode(data, pos) -> (value, next_pos)`; encoders:
`encode(value) -> bytes`. Both raise ValueError/TypeError with a reason; the
caller, which knows the field number and offset, wraps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .encodings import FieldValue, converters, text_predicate
from .spec import FieldSpec

Decoder = Callable[[bytes, int], tuple[FieldValue, int]]
Encoder = Callable[[FieldValue], bytes]
PrefixReader = Callable[[bytes], int]
PrefixWriter = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class FieldCodec:
    spec: FieldSpec
    decode: Decoder
    encode: Encoder


def compile_field(spec: FieldSpec) -> FieldCodec:
    ascii_text = spec.enc == "ascii" and spec.type in ("n", "an", "ans", "a")
    if spec.prefix_digits:
        encoder = _ascii_variable_encoder(spec) if ascii_text else _variable_encoder(spec)
        return FieldCodec(spec, _variable_decoder(spec), encoder)
    encoder = _ascii_fixed_encoder(spec) if ascii_text else _fixed_encoder(spec)
    return FieldCodec(spec, _fixed_decoder(spec), encoder)


def prefix_size(len_enc: str, digits: int) -> int:
    """Bytes taken by a length prefix of `digits` decimal digits."""
    if len_enc == "bcd":
        return (digits + 1) // 2
    if len_enc == "binary":
        return 1 if digits <= 2 else 2  # LL: 1 byte (0..255), LLL/LLLL: 2 bytes
    return digits


def prefix_reader(len_enc: str, codepage: str) -> PrefixReader:
    if len_enc == "binary":
        return _read_binary_length
    if len_enc == "bcd":
        return _read_bcd_length
    if len_enc == "ebcdic":
        return lambda raw: _read_ascii_length(raw.decode(codepage).encode("ascii"))
    return _read_ascii_length


def _read_ascii_length(raw: bytes) -> int:
    if not raw.isdigit():
        raise ValueError("length prefix is not digits")
    return int(raw)


def _read_bcd_length(raw: bytes) -> int:
    nibbles = raw.hex()
    if not nibbles.isdigit():
        raise ValueError("length prefix is not BCD")
    return int(nibbles)


def _read_binary_length(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def prefix_writer(len_enc: str, digits: int, codepage: str) -> PrefixWriter:
    size = prefix_size(len_enc, digits)
    if len_enc == "binary":
        return lambda length: length.to_bytes(size, "big")
    if len_enc == "bcd":
        return lambda length: bytes.fromhex(f"{length:0{size * 2}d}")
    if len_enc == "ebcdic":
        return lambda length: f"{length:0{digits}d}".encode(codepage)
    return lambda length: f"{length:0{digits}d}".encode("ascii")


def _fixed_decoder(spec: FieldSpec) -> Decoder:
    to_value, _, byte_count = converters(spec)
    units = spec.max
    size = byte_count(units)

    def decode_fixed(data: bytes, pos: int) -> tuple[FieldValue, int]:
        end = pos + size
        if end > len(data):
            raise ValueError(f"needs {size} bytes, {len(data) - pos} left")
        return to_value(data[pos:end], units), end

    return decode_fixed


def _variable_decoder(spec: FieldSpec) -> Decoder:
    to_value, _, byte_count = converters(spec)
    width = prefix_size(spec.len_enc, spec.prefix_digits)
    read_length = prefix_reader(spec.len_enc, spec.codepage)
    maximum = spec.max

    def decode_variable(data: bytes, pos: int) -> tuple[FieldValue, int]:
        start = pos + width
        if start > len(data):
            raise ValueError("length prefix truncated")
        units = read_length(data[pos:start])
        if units > maximum:
            raise ValueError(f"length {units} over maximum {maximum}")
        end = start + byte_count(units)
        if end > len(data):
            raise ValueError(f"declares {end - start} bytes, {len(data) - start} left")
        return to_value(data[start:end], units), end

    return decode_variable


def _fixed_encoder(spec: FieldSpec) -> Encoder:
    _, from_value, _ = converters(spec)
    units = spec.max
    pad = _fixed_padder(spec)

    def encode_fixed(value: FieldValue) -> bytes:
        raw, count = from_value(pad(value))
        if count != units:
            raise ValueError(f"length {count}, fixed length is {units}")
        return raw

    return encode_fixed


def _fixed_padder(spec: FieldSpec) -> Callable[[FieldValue], FieldValue]:
    """Fixed-field padding on encode: n left zeros, text right spaces (ISO 8583 4.3)."""
    units = spec.max
    if spec.type in ("n", "xn"):
        sign = 1 if spec.type == "xn" else 0

        def pad_digits(value: FieldValue) -> FieldValue:
            if type(value) is str and len(value) < units:
                return value[:sign] + value[sign:].rjust(units - sign, "0")
            return value

        return pad_digits
    if spec.type in ("a", "an", "ans"):

        def pad_text(value: FieldValue) -> FieldValue:
            if type(value) is str and len(value) < units:
                return value.ljust(units)
            return value

        return pad_text
    return _unchanged


def _unchanged(value: FieldValue) -> FieldValue:
    return value


def _ascii_fixed_encoder(spec: FieldSpec) -> Encoder:
    """Fast path for the commonest field: fixed-length ASCII text, one closure."""
    units, is_valid, type_ = spec.max, text_predicate(spec.type), spec.type
    numeric = type_ == "n"

    def encode_ascii_fixed(value: FieldValue) -> bytes:
        if type(value) is not str:
            raise ValueError(f"type {type_} takes str, got {type(value).__name__}")
        if len(value) != units:
            if len(value) > units:
                raise ValueError(f"length {len(value)}, fixed length is {units}")
            value = value.rjust(units, "0") if numeric else value.ljust(units)
        if not is_valid(value):
            raise ValueError(f"characters outside type {type_}")
        return value.encode("ascii")

    return encode_ascii_fixed


def _ascii_variable_encoder(spec: FieldSpec) -> Encoder:
    """Fast path for ASCII text LLVAR/LLLVAR: length prefixes cached per length."""
    is_valid, type_ = text_predicate(spec.type), spec.type
    maximum = min(spec.max, 10**spec.prefix_digits - 1)
    if spec.len_enc == "binary":
        maximum = min(spec.max, 256 ** prefix_size("binary", spec.prefix_digits) - 1)
    write_length = prefix_writer(spec.len_enc, spec.prefix_digits, spec.codepage)
    # Filled as lengths occur: building every prefix up front cost ~10 ms per
    # codec (65,536 entries for a 2-byte binary prefix).
    prefixes: dict[int, bytes] = {}

    def encode_ascii_variable(value: FieldValue) -> bytes:
        if type(value) is not str:
            raise ValueError(f"type {type_} takes str, got {type(value).__name__}")
        length = len(value)
        if length > maximum:
            raise ValueError(f"length {length} over maximum {maximum}")
        if value and not is_valid(value):
            raise ValueError(f"characters outside type {type_}")
        prefix = prefixes.get(length)
        if prefix is None:
            prefix = prefixes[length] = write_length(length)
        return prefix + value.encode("ascii")

    return encode_ascii_variable


def _variable_encoder(spec: FieldSpec) -> Encoder:
    _, from_value, _ = converters(spec)
    write_length = prefix_writer(spec.len_enc, spec.prefix_digits, spec.codepage)
    maximum = spec.max
    ceiling = 256 ** prefix_size("binary", spec.prefix_digits) - 1
    if spec.len_enc != "binary":
        ceiling = 10**spec.prefix_digits - 1

    def encode_variable(value: FieldValue) -> bytes:
        raw, units = from_value(value)
        if units > maximum or units > ceiling:
            raise ValueError(f"length {units} over maximum {min(maximum, ceiling)}")
        return write_length(units) + raw

    return encode_variable
