"""A profile's `[mac]` table: which field carries the MAC, how it is made,
and what a terminal is told when it is wrong.

```toml
[mac]
field = 64                      # 64, or 128 (then every MACed message has a secondary bitmap)
algorithm = "iso9797-1-alg3"    # or "aes-cmac"
padding = 1                     # ISO 9797-1 padding method 1 or 2 (retail MAC only)
error_response = "A0"           # field 39 of the answer to a bad or missing MAC
required = true                 # a request without a MAC is refused (network management aside)
```

The MAC field is the last field of every message that carries it (ISO
8583: the MAC covers everything before it), so it must be defined as a
fixed 8-byte binary field, and no field above it may exist in the profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..iso8583.spec import MessageSpec
from ..normalize.response_codes import category_for
from ..tables import TableReader
from .algorithms import MAC_LENGTH, PADDING_METHODS, MacAlgorithm

MAC_FIELDS = (64, 128)
#: ISO 8583:1987 field 39 is an2; 1993 and 2003 action codes are n3.
_CODE_LENGTH = {1987: 2, 1993: 3, 2003: 3}


@dataclass(frozen=True, slots=True)
class MacSpec:
    field: int
    algorithm: MacAlgorithm
    error_response: str
    padding: int = 1  # ISO 9797-1 method; ignored by AES-CMAC
    required: bool = True


def parse_mac_spec(reader: TableReader, iso: MessageSpec) -> MacSpec:
    """The `[mac]` table read through `reader`, checked against the profile's dialect."""
    algorithm = MacAlgorithm(reader.choice("algorithm", [a.value for a in MacAlgorithm]))
    if algorithm is MacAlgorithm.AES_CMAC:
        reader.forbid(("padding",), "AES-CMAC pads by its own rule (SP 800-38B); remove it")
    spec = MacSpec(
        field=reader.choice("field", MAC_FIELDS),
        algorithm=algorithm,
        error_response=reader.text("error_response") or "",
        padding=reader.choice("padding", PADDING_METHODS, 1),
        required=reader.flag("required", True),
    )
    reader.reject_unknown()
    _check_field(reader, iso, spec.field)
    _check_error_response(reader, iso.version, spec.error_response)
    return spec


def _check_field(reader: TableReader, iso: MessageSpec, number: int) -> None:
    field = iso.fields.get(number)
    if (field is None or field.type != "b" or field.prefix_digits or field.enc != "binary"
            or field.max != MAC_LENGTH):
        reader.fail("field", f"field {number} must be defined in [iso8583.fields] as fixed "
                             f'8-byte binary: {{ type = "b", max = 8, enc = "binary" }}')
    above = [n for n in iso.fields if n > number]
    if above:
        reader.fail("field", f"field {number} must be the last field a message can carry; "
                             f"the profile defines field {max(above)} after it")
    if iso.tertiary_bitmap:
        reader.fail("field", "a tertiary bitmap lets fields 129-192 follow the MAC field")


def _check_error_response(reader: TableReader, version: int, code: str) -> None:
    if _CODE_LENGTH[version] == 2:
        shape, example, fits = "2 characters", "A0, or 63 (security violation)", code.isalnum()
    else:  # 1993 and 2003 action codes are n3
        shape, example, fits = "3 digits", "916 (MAC incorrect)", code.isdigit()
    if len(code) != _CODE_LENGTH[version] or not (code.isascii() and fits):
        reader.fail("error_response", f"must be an ISO 8583:{version} field 39 code of "
                                      f"{shape}, e.g. {example}; got {code!r}")
    if category_for(code).is_approval:
        reader.fail("error_response", f"{code} is an approval code")
