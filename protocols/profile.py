"""A firmware profile: transport defaults, framing and ISO 8583 dialect.

Profiles are plain TOML files (see firmware_profiles/README.md). Reading the
file is the caller's job; this module validates the parsed mapping, resolves
`extends` against a base mapping the caller supplies, and reports every
problem as a SpecError naming file, key and reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .framing import FramingSpec
from .iso8583.errors import SpecError
from .iso8583.spec import MessageSpec, parse_fields, reject_unknown

_TOP_KEYS = frozenset({"profile", "transport", "framing", "iso8583"})
_TRANSPORT_KEYS = frozenset(
    {"kind", "baud", "bytesize", "parity", "stopbits", "flow", "usb"}
)
_USB_KEYS = frozenset(
    {"vid", "pid", "description", "mode", "interface", "ep_in", "ep_out", "serial_number"}
)


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

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], source: str = "") -> Profile:
        for key in table:
            if key not in _TOP_KEYS:
                raise SpecError(key, f"unknown section (known: {', '.join(sorted(_TOP_KEYS))})",
                                source)
        meta = _section(table, "profile", source)
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise SpecError("profile.name", "required, a non-empty string", source)
        return cls(
            name=name,
            description=str(meta.get("description", "")),
            transport=parse_transport(_section(table, "transport", source), source),
            framing=FramingSpec.from_mapping(_section(table, "framing", source), source),
            iso8583=MessageSpec.from_mapping(_section(table, "iso8583", source), source),
            source=source,
        )


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


def parse_transport(table: Mapping[str, Any], source: str) -> TransportSpec:
    reject_unknown(table, _TRANSPORT_KEYS, "transport", source)
    kind = _pick(table, "kind", ("tcp", "serial", "usb"), "tcp", source)
    spec = TransportSpec(
        kind=kind,
        baud=_pick(table, "baud", (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200),
                   9600, source),
        bytesize=_pick(table, "bytesize", (7, 8), 8, source),
        parity=_pick(table, "parity", ("N", "E", "O"), "N", source),
        stopbits=_pick(table, "stopbits", (1, 1.5, 2), 1, source),
        flow=_pick(table, "flow", ("none", "rtscts", "xonxoff"), "none", source),
        usb=tuple(_parse_usb(entry, i, source) for i, entry in enumerate(table.get("usb", []))),
    )
    return spec


def _parse_usb(entry: Any, index: int, source: str) -> UsbMatch:
    path = f"transport.usb[{index}]"
    if not isinstance(entry, Mapping):
        raise SpecError(path, "must be a table", source)
    reject_unknown(entry, _USB_KEYS, path, source)
    return UsbMatch(
        vid=_usb_id(entry, "vid", path, source),
        pid=_usb_id(entry, "pid", path, source),
        description=str(entry.get("description", "")),
        mode=_pick(entry, "mode", ("cdc-acm", "bulk"), "cdc-acm", source, path),
        interface=int(entry.get("interface", 0)),
        ep_in=int(entry.get("ep_in", 0x81)),
        ep_out=int(entry.get("ep_out", 0x01)),
    )


def _usb_id(entry: Mapping[str, Any], key: str, path: str, source: str) -> int:
    value = entry.get(key)
    if isinstance(value, str) and len(value) == 4:
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise SpecError(f"{path}.{key}", "required, 4 hex digits such as \"0B00\"", source)


def _section(table: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, Mapping):
        raise SpecError(key, "must be a table", source)
    return value


def _pick(table: Mapping[str, Any], key: str, choices: tuple[Any, ...], default: Any,
          source: str, path: str = "transport") -> Any:
    value = table.get(key, default)
    if value not in choices or isinstance(value, bool):
        allowed = ", ".join(str(c) for c in choices)
        raise SpecError(f"{path}.{key}", f"{value!r} is not one of {allowed}", source)
    return value


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
    skeleton = {**table, "iso8583": {**iso, "fields": {}}}
    attempt(Profile.from_mapping, skeleton, source)
    defaults = iso.get("defaults", {}) if isinstance(iso.get("defaults"), Mapping) else {}
    for number, body in fields.items():
        attempt(parse_fields, {number: body}, defaults, "iso8583.fields", source, 2, 192)
    return problems


def _section_or_empty(table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = table.get(key, {})
    return value if isinstance(value, Mapping) else {}
