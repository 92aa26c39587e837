"""Field and message specs: the data a firmware profile declares.

A spec is read from a plain mapping (a parsed TOML table) and validated here,
once; `codec.py` then compiles it into per-field callables. Every problem is
a `SpecError` naming the key path, so `posgw profiles check` can list them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..tables import REQUIRED, TableReader
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
        reader = TableReader(table, "iso8583", source, error=SpecError)
        version = reader.choice("version", (1987, 1993, 2003), 1987)
        mti_enc = reader.choice("mti", ("ascii", "bcd", "ebcdic"), "ascii")
        bitmap_enc = reader.choice("bitmap", ("hex", "binary"), "binary")
        tertiary = reader.flag("tertiary_bitmap", False)
        defaults = dict(reader.sub("defaults").raw_table)
        codepage = reader.choice("codepage", sorted(EBCDIC_CODEPAGES), "cp500")
        defaults.setdefault("codepage", codepage)
        raw_fields = reader.sub("fields")
        reader.reject_unknown()
        fields = parse_fields(raw_fields.raw_table, defaults, "iso8583.fields", source, 2, 192)
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
    reader = TableReader(body, path, source, error=SpecError)
    type_ = reader.choice("type", sorted(TYPES))
    enc = reader.choice("enc", sorted(ENCODINGS), "ascii")
    length = reader.choice("len", tuple(PREFIX_DIGITS), "fixed")
    len_enc = reader.choice("len_enc", sorted(LENGTH_ENCODINGS), "ascii")
    unit = reader.choice("unit", sorted(UNITS), _default_unit(enc))
    maximum = reader.integer("max", REQUIRED, 1)
    prefix_digits = PREFIX_DIGITS[length]
    if prefix_digits and maximum >= 10**prefix_digits and len_enc != "binary":
        reader.fail("max", f"{maximum} does not fit a {length} prefix")
    _check_encoding_fits_type(reader, type_, enc, unit)
    spec = FieldSpec(
        number=number,
        name=reader.text("name", f"Field {number}") or f"Field {number}",
        type=type_,
        enc=enc,
        prefix_digits=prefix_digits,
        max=maximum,
        len_enc=len_enc,
        unit=unit,
        pad_left=reader.choice("pad", ("left", "right"), "left") == "left",
        pad_nibble=reader.choice("pad_nibble", ("0", "F"), "0"),
        codepage=reader.choice("codepage", sorted(EBCDIC_CODEPAGES), "cp500"),
        tlv=reader.flag("tlv", False),
        sensitive=reader.choice("sensitive", ("", *sorted(SENSITIVITY)), ""),
        subfields=_parse_layout(reader, body),
    )
    reader.reject_unknown()
    return spec


def _default_unit(enc: str) -> str:
    return {"bcd": "digits", "binary": "bytes"}.get(enc, "chars")


def _check_encoding_fits_type(reader: TableReader, type_: str, enc: str, unit: str) -> None:
    if type_ == "b" and enc not in ("binary", "hex"):
        reader.fail("enc", "type b is carried as binary or hex")
    if type_ != "b" and enc in ("binary", "hex"):
        reader.fail("enc", f"type {type_} cannot use enc {enc}")
    if enc == "bcd" and type_ not in ("n", "z", "xn"):
        reader.fail("enc", f"type {type_} cannot be packed as BCD")
    if enc == "binary" and unit != "bytes":
        reader.fail("unit", "binary fields count bytes")
    if enc in ("ascii", "ebcdic") and unit == "digits" and type_ not in ("n", "z"):
        reader.fail("unit", f"type {type_} has characters, not digits")


def _parse_layout(reader: TableReader, body: Mapping[str, Any]) -> SubfieldLayout | None:
    if "layout" not in reader:
        reader.forbid(("subfields", "tag_chars", "len_chars"), "needs a layout")
        return None
    layout = reader.choice("layout", sorted(LAYOUTS))
    # Sub-elements are read from the parent's value: the digit string of a
    # BCD field, the text of an ASCII/EBCDIC one, the bytes of a binary one.
    sub_defaults: dict[str, Any] = {"enc": "ascii", "len_enc": "ascii"}
    if body.get("enc") == "ebcdic":
        codepage = body.get("codepage", "cp500")
        sub_defaults = {"enc": "ebcdic", "len_enc": "ebcdic", "codepage": codepage}
    highest = 64 if layout == "bitmap" else 999  # one 8-byte sub-field bitmap
    raw = reader.sub("subfields").raw_table
    subfields = parse_fields(raw, sub_defaults, f"{reader.path}.subfields", reader.source, 1,
                             highest)
    return SubfieldLayout(
        layout=layout,
        fields=subfields,
        tag_chars=reader.integer("tag_chars", 2, 1, 8),
        len_chars=reader.integer("len_chars", 3, 1, 4),
    )


