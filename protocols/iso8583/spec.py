"""Field and message specs: the data a firmware profile declares.

A spec is read from a plain mapping (a parsed TOML table) and validated here,
once; `codec.py` then compiles it into per-field callables. Every problem is
a `SpecError` naming the key path, so `posgw profiles check` can list them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError

#: Data types of ISO 8583:1987 clause 4.3: n digits, a letters, an/ans text,
#: b binary, z track 2/3 code set, xn amount prefixed by C (credit) or D (debit).
TYPES = frozenset({"n", "a", "an", "ans", "b", "z", "xn"})
ENCODINGS = frozenset({"ascii", "ebcdic", "bcd", "binary", "hex"})
LENGTH_ENCODINGS = frozenset({"ascii", "ebcdic", "bcd", "binary"})
#: LLVAR and friends: how many decimal digits the length prefix holds.
PREFIX_DIGITS = {"fixed": 0, "LLVAR": 2, "LLLVAR": 3, "LLLLVAR": 4}
UNITS = frozenset({"chars", "digits", "bytes"})
EBCDIC_CODEPAGES = frozenset({"cp500", "cp037"})
SENSITIVITY = frozenset({"pan", "track", "pin", "secret"})
LAYOUTS = frozenset({"positional", "bitmap", "tlv", "ber-tlv"})

_FIELD_KEYS = frozenset(
    {"name", "type", "enc", "len", "max", "len_enc", "unit", "pad", "pad_nibble",
     "codepage", "tlv", "sensitive", "layout", "subfields", "tag_chars", "len_chars"}
)
_MESSAGE_KEYS = frozenset(
    {"version", "mti", "bitmap", "tertiary_bitmap", "defaults", "fields", "codepage"}
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One data element (or sub-element) as the wire carries it.

    `max` counts `unit`s: characters for text, digits for BCD numerics, bytes
    for binary. For a fixed field it is the exact length.
    """

    number: int
    name: str
    type: str
    enc: str
    prefix_digits: int
    max: int
    len_enc: str
    unit: str
    pad_left: bool
    pad_nibble: str
    codepage: str
    tlv: bool = False
    sensitive: str = ""
    subfields: SubfieldLayout | None = None

    @property
    def label(self) -> str:
        return str(self.number)

    @property
    def is_binary(self) -> bool:
        return self.type == "b"


@dataclass(frozen=True, slots=True)
class SubfieldLayout:
    """How a private field's value splits into sub-elements.

    positional: sub-fields one after another in number order;
    bitmap: an 8-byte (or 16 hex char) bitmap, then the sub-fields it flags
    (Visa field 62, Postilion field 127); tlv: tag of `tag_chars` characters
    and a length of `len_chars` digits before each value (Mastercard DE 48
    style); ber-tlv: EMV BER-TLV.
    """

    layout: str
    fields: Mapping[int, FieldSpec]
    bitmap_enc: str = "binary"
    tag_chars: int = 2
    len_chars: int = 3


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """A whole ISO 8583 dialect: MTI, bitmaps and data elements."""

    version: int
    mti_enc: str
    bitmap_enc: str
    tertiary_bitmap: bool
    fields: Mapping[int, FieldSpec] = field(default_factory=dict)
    source: str = ""

    @property
    def tlv_fields(self) -> frozenset[int]:
        return frozenset(n for n, f in self.fields.items() if f.tlv)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], source: str = "") -> MessageSpec:
        """Validate an `[iso8583]` table; raise SpecError naming the first bad key."""
        reject_unknown(table, _MESSAGE_KEYS, "iso8583", source)
        version = choice(table, "version", (1987, 1993, 2003), 1987, "iso8583", source)
        mti_enc = choice(table, "mti", ("ascii", "bcd", "ebcdic"), "ascii", "iso8583", source)
        bitmap_enc = choice(table, "bitmap", ("hex", "binary"), "binary", "iso8583", source)
        tertiary = typed(table, "tertiary_bitmap", bool, False, "iso8583", source)
        defaults = typed(table, "defaults", dict, {}, "iso8583", source)
        if "codepage" in table:
            defaults = {"codepage": table["codepage"], **defaults}
        raw_fields = typed(table, "fields", dict, {}, "iso8583", source)
        fields = parse_fields(raw_fields, defaults, "iso8583.fields", source, 2, 192)
        if tertiary and 65 in fields:
            raise SpecError("iso8583.fields.65", "field 65 is the tertiary bitmap here", source)
        return cls(version, mti_enc, bitmap_enc, tertiary, fields, source)


def parse_fields(
    table: Mapping[str, Any],
    defaults: Mapping[str, Any],
    path: str,
    source: str,
    lowest: int,
    highest: int,
) -> dict[int, FieldSpec]:
    """Parse `{"2": {...}, "3": {...}}` into FieldSpecs keyed by number."""
    fields: dict[int, FieldSpec] = {}
    for key, body in table.items():
        key_path = f"{path}.{key}"
        if not str(key).isdigit() or not lowest <= int(key) <= highest:
            raise SpecError(key_path, f"field number must be {lowest}..{highest}", source)
        if not isinstance(body, Mapping):
            raise SpecError(key_path, "must be a table", source)
        fields[int(key)] = parse_field(int(key), {**defaults, **body}, key_path, source)
    return dict(sorted(fields.items()))


def parse_field(number: int, body: Mapping[str, Any], path: str, source: str) -> FieldSpec:
    """Validate one field table (defaults already merged in)."""
    reject_unknown(body, _FIELD_KEYS, path, source)
    type_ = choice(body, "type", tuple(sorted(TYPES)), None, path, source)
    enc = choice(body, "enc", tuple(sorted(ENCODINGS)), "ascii", path, source)
    length = choice(body, "len", tuple(PREFIX_DIGITS), "fixed", path, source)
    len_enc = choice(body, "len_enc", tuple(sorted(LENGTH_ENCODINGS)), "ascii", path, source)
    unit = choice(body, "unit", tuple(sorted(UNITS)), _default_unit(enc), path, source)
    maximum = typed(body, "max", int, None, path, source)
    if maximum is None or maximum < 1:
        raise SpecError(f"{path}.max", "required, a positive integer", source)
    prefix_digits = PREFIX_DIGITS[length]
    if prefix_digits and maximum >= 10**prefix_digits and len_enc != "binary":
        raise SpecError(f"{path}.max", f"{maximum} does not fit a {length} prefix", source)
    _check_encoding_fits_type(type_, enc, unit, path, source)
    spec = FieldSpec(
        number=number,
        name=typed(body, "name", str, f"Field {number}", path, source),
        type=type_,
        enc=enc,
        prefix_digits=prefix_digits,
        max=maximum,
        len_enc=len_enc,
        unit=unit,
        pad_left=choice(body, "pad", ("left", "right"), "left", path, source) == "left",
        pad_nibble=choice(body, "pad_nibble", ("0", "F"), "0", path, source),
        codepage=choice(body, "codepage", tuple(sorted(EBCDIC_CODEPAGES)), "cp500", path, source),
        tlv=typed(body, "tlv", bool, False, path, source),
        sensitive=choice(body, "sensitive", ("", *sorted(SENSITIVITY)), "", path, source),
        subfields=_parse_layout(body, path, source),
    )
    return spec


def _default_unit(enc: str) -> str:
    return {"bcd": "digits", "binary": "bytes"}.get(enc, "chars")


def _check_encoding_fits_type(type_: str, enc: str, unit: str, path: str, source: str) -> None:
    if type_ == "b" and enc not in ("binary", "hex"):
        raise SpecError(f"{path}.enc", "type b is carried as binary or hex", source)
    if type_ != "b" and enc in ("binary", "hex"):
        raise SpecError(f"{path}.enc", f"type {type_} cannot use enc {enc}", source)
    if enc == "bcd" and type_ not in ("n", "z", "xn"):
        raise SpecError(f"{path}.enc", f"type {type_} cannot be packed as BCD", source)
    if enc == "binary" and unit != "bytes":
        raise SpecError(f"{path}.unit", "binary fields count bytes", source)
    if enc in ("ascii", "ebcdic") and unit == "digits" and type_ not in ("n", "z"):
        raise SpecError(f"{path}.unit", f"type {type_} has characters, not digits", source)


def _parse_layout(body: Mapping[str, Any], path: str, source: str) -> SubfieldLayout | None:
    if "layout" not in body:
        if "subfields" in body:
            raise SpecError(f"{path}.layout", "subfields need a layout", source)
        return None
    layout = choice(body, "layout", tuple(sorted(LAYOUTS)), None, path, source)
    raw = typed(body, "subfields", dict, {}, path, source)
    # Sub-elements are read from the parent's value: the digit string of a
    # BCD field, the text of an ASCII/EBCDIC one, the bytes of a binary one.
    sub_defaults: dict[str, Any] = {"enc": "ascii", "len_enc": "ascii"}
    if body.get("enc") == "ebcdic":
        codepage = body.get("codepage", "cp500")
        sub_defaults = {"enc": "ebcdic", "len_enc": "ebcdic", "codepage": codepage}
    highest = 64 if layout == "bitmap" else 999  # one 8-byte sub-field bitmap
    subfields = parse_fields(raw, sub_defaults, f"{path}.subfields", source, 1, highest)
    return SubfieldLayout(
        layout=layout,
        fields=subfields,
        tag_chars=typed(body, "tag_chars", int, 2, path, source),
        len_chars=typed(body, "len_chars", int, 3, path, source),
    )


def reject_unknown(table: Mapping[str, Any], known: frozenset[str], path: str, src: str) -> None:
    for key in table:
        if key not in known:
            known_keys = ", ".join(sorted(known))
            raise SpecError(f"{path}.{key}", f"unknown key (known: {known_keys})", src)


def typed(table: Mapping[str, Any], key: str, kind: type, default: Any, path: str, src: str) -> Any:
    value = table.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise SpecError(f"{path}.{key}", f"must be {kind.__name__}", src)
    if kind is int and isinstance(value, bool):
        raise SpecError(f"{path}.{key}", "must be int", src)
    return value


def choice(
    table: Mapping[str, Any], key: str, choices: tuple[Any, ...], default: Any, path: str, src: str
) -> Any:
    value = table.get(key, default)
    if value not in choices:
        allowed = ", ".join(str(c) for c in choices if c != "")
        what = "required" if value is None else f"{value!r} is not one of"
        raise SpecError(f"{path}.{key}", f"{what} {allowed}", src)
    return value
