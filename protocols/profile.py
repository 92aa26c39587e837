"""A firmware profile: transport defaults, framing and ISO 8583 dialect.

Profiles are plain TOML files (see firmware_profiles/README.md). Reading the
file is the caller's job; this module validates the parsed mapping, resolves
`extends` against a base mapping the caller supplies, and reports every
problem as a SpecError naming file, key and reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .framing import FramingSpec
from .iso8583.errors import SpecError
from .iso8583.spec import MessageSpec, parse_fields
from .mac.spec import MacSpec, parse_mac_spec
from .tables import TableReader

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True, slots=True)
class UsbMatch:
    """One USB identity a profile claims, e.g. Ingenico 0B00:0054 in CDC-ACM mode."""

    vid: int
    pid: int
    description: str = ""
    mode: str = "cdc-acm"  # "cdc-acm" (a serial port) or "bulk" (vendor endpoints)
    interface: int = 0
    ep_in: int = 0x81
    ep_out: int = 0x01


@dataclass(frozen=True, slots=True)
class TransportSpec:
    """Link defaults; a terminal's config may override any of them."""

    kind: str = "tcp"  # "tcp", "serial" or "usb"
    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    flow: str = "none"  # "none", "rtscts" or "xonxoff"
    usb: tuple[UsbMatch, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    transport: TransportSpec
    framing: FramingSpec
    iso8583: MessageSpec
    source: str = ""
    mac: MacSpec | None = None  # the optional `[mac]` table

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], source: str = "") -> Profile:
        reader = TableReader(table, "", source, error=SpecError)
        meta = reader.sub("profile")
        name = meta.text("name")
        if not name:
            meta.fail("name", "required, a non-empty string")
        description = meta.text("description", "") or ""
        meta.reject_unknown(also_known=("extends",))
        profile = cls(
            name=name,
            description=description,
            transport=parse_transport(reader.sub("transport")),
            framing=FramingSpec.from_mapping(reader.raw("framing", {}), source),
            iso8583=MessageSpec.from_mapping(reader.sub("iso8583").raw_table, source),
            source=source,
        )
        if "mac" in reader:
            profile = replace(profile, mac=parse_mac_spec(reader.sub("mac"), profile.iso8583))
        reader.reject_unknown()
        return profile


def merge_profiles(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """`child` over `base`, table by table; `extends` and `name` are the child's own."""
    merged: dict[str, Any] = dict(base)
    for key, value in child.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping) and key != "usb":
            merged[key] = merge_profiles(old, value)
        else:
            merged[key] = value
    return merged


def parse_transport(reader: TableReader) -> TransportSpec:
    """The `[transport]` table (read through `reader`)."""
    spec = TransportSpec(
        kind=reader.choice("kind", ("tcp", "serial", "usb"), "tcp"),
        baud=reader.choice("baud", BAUD_RATES, 9600),
        bytesize=reader.choice("bytesize", (7, 8), 8),
        parity=reader.choice("parity", ("N", "E", "O"), "N"),
        stopbits=reader.choice("stopbits", (1, 1.5, 2), 1),
        flow=reader.choice("flow", ("none", "rtscts", "xonxoff"), "none"),
        usb=tuple(
            _parse_usb(TableReader(entry, f"{reader.path}.usb[{i}]", reader.source,
                                    error=reader.error))
            for i, entry in enumerate(reader.array("usb"))
        ),
    )
    reader.reject_unknown()
    return spec


def _parse_usb(reader: TableReader) -> UsbMatch:
    match = UsbMatch(
        vid=_usb_id(reader, "vid"),
        pid=_usb_id(reader, "pid"),
        description=reader.text("description", "") or "",
        mode=reader.choice("mode", ("cdc-acm", "bulk"), "cdc-acm"),
        interface=reader.integer("interface", 0, 0, 255),
        ep_in=reader.integer("ep_in", 0x81, 0x81, 0x8F),
        ep_out=reader.integer("ep_out", 0x01, 0x01, 0x0F),
    )
    reader.reject_unknown()
    return match


def _usb_id(reader: TableReader, key: str) -> int:
    value = reader.text(key)
    if value is None or len(value) != 4 or any(c not in "0123456789abcdefABCDEF" for c in value):
        reader.fail(key, 'required, 4 hex digits such as "0B00"')
    return int(value, 16)


def find_problems(table: Mapping[str, Any], source: str = "") -> list[SpecError]:
    """Validate each section and each field on its own, so one run lists every problem."""
    problems: list[SpecError] = []

    def attempt(check: Any, *args: Any) -> None:
        try:
            check(*args)
        except SpecError as exc:
            problems.append(exc)

    iso = _section_or_empty(table, "iso8583")
    fields = iso.get("fields", {}) if isinstance(iso.get("fields", {}), Mapping) else {}
    skeleton = {k: v for k, v in table.items() if k != "mac"}  # [mac] needs the fields
    attempt(Profile.from_mapping, {**skeleton, "iso8583": {**iso, "fields": {}}}, source)
    defaults = iso.get("defaults", {}) if isinstance(iso.get("defaults"), Mapping) else {}
    for number, body in fields.items():
        attempt(parse_fields, {number: body}, defaults, "iso8583.fields", source, 2, 192)
    if "mac" in table and not problems:
        attempt(_check_mac_table, table, source)
    return problems


def _check_mac_table(table: Mapping[str, Any], source: str) -> None:
    iso = MessageSpec.from_mapping(_section_or_empty(table, "iso8583"), source)
    parse_mac_spec(TableReader(table["mac"], "mac", source, error=SpecError), iso)


def _section_or_empty(table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = table.get(key, {})
    return value if isinstance(value, Mapping) else {}
