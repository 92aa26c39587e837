"""`posgw decode`, `posgw encode`, `posgw profiles`: messages and profiles.

Bad input exits 2 with one line naming what is wrong (for a message: the
field and the byte offset). The PAN is masked in every dump.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from posgw.cli.common import fail, firmware_profile
from posgw.gateway import message_view
from posgw.gateway.profiles import builtin_names, check_profile, load_profile
from posgw.gateway.wire import WireError, unwrap, wrap
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import Iso8583Error
from posgw.protocols.iso8583.message import FieldValue, Message
from posgw.protocols.profile import Profile


def profile_codec(profile_name: str) -> tuple[Profile, Codec]:
    """The named (or file) profile and its codec, or exit 2 naming the problem."""
    profile = firmware_profile(profile_name)
    return profile, Codec(profile.iso8583)


@click.command()
@click.option("-p", "--profile", "profile_name", required=True,
              help="Profile name (see `posgw profiles list`) or path to a .toml file.")
@click.option("--hex", "hex_text", help="The message as hex (spaces allowed).")
@click.option("--file", "file_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A file holding the raw message bytes.")
@click.option("--bare", is_flag=True,
              help="The bytes are the ISO 8583 message alone, without the profile's length "
                   "header, TPDU or STX/ETX envelope.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a dump.")
def decode(profile_name: str, hex_text: str | None, file_path: Path | None, bare: bool,
           as_json: bool) -> None:
    """Dump a message: MTI, every field with its name, field 55 as TLV, the
    normalized transaction. The PAN is masked (first 6, last 4); track data
    and PIN blocks are never shown.

    By default the bytes are as they travel on the wire for the profile:
    length header, TPDU and header, or STX ... ETX with its check.
    """
    data = _input_bytes(hex_text, file_path)
    profile, codec = profile_codec(profile_name)
    try:
        payload, envelope = (data, None) if bare else unwrap(profile.framing, data)
        message = codec.decode(payload)
        view = message_view.message_json(codec, message)
    except (Iso8583Error, WireError) as exc:
        fail("decode", exc)
    if envelope is not None and envelope.tpdu is not None:
        view["tpdu"] = envelope.tpdu.to_bytes().hex().upper()
    if as_json:
        click.echo(json.dumps(view, indent=2))
    else:
        _print_dump(profile.name, codec, message, view, len(data))


def _input_bytes(hex_text: str | None, file_path: Path | None) -> bytes:
    if (hex_text is None) == (file_path is None):
        fail("decode", "give exactly one of --hex or --file")
    if file_path is not None:
        try:
            return file_path.read_bytes()
        except OSError as exc:
            fail("decode", f"{file_path}: {exc.strerror}")
    try:
        return bytes.fromhex("".join((hex_text or "").split()))
    except ValueError:
        fail("decode", "--hex holds a non-hex character or an odd number of digits")


def _print_dump(profile: str, codec: Codec, message: Message, view: dict[str, Any],
                size: int) -> None:
    console = Console()
    console.print(f"[bold]{profile}[/]  MTI [bold]{message.mti}[/] "
                  f"({message_view.describe_mti(message.mti)}), {size} bytes")
    table = Table("fld", "name", "value", box=None, pad_edge=False)
    subfields = view.get("subfields", {})
    for key, value in view["fields"].items():
        spec = codec.field_spec(int(key))
        table.add_row(key, spec.name if spec else "", value)
        for sub_key, sub_value in subfields.get(key, {}).items():
            table.add_row(f"  {key}.{sub_key}", "", sub_value)
    console.print(table)
    rows = message_view.tlv_rows(codec, message)
    if rows:
        tlv = Table("tag", "EMV name", "value", box=None, pad_edge=False, title="ICC data (TLV)")
        for row in rows:
            tlv.add_row(*row)
        console.print(tlv)
    normalized = Table("normalized", "", box=None, pad_edge=False)
    for key, value in view["normalized"].items():
        if key != "emv" and value not in (None, "", {}):  # emv: shown as TLV above
            normalized.add_row(key, str(value))
    console.print(normalized)


@click.command()
@click.option("-p", "--profile", "profile_name", required=True,
              help="Profile name or path to a .toml file.")
@click.option("--json", "json_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
              help='JSON file ("-" for stdin): {"mti": "0200", "fields": {"2": "...", ...}}; '
                   "binary fields as hex.")
@click.option("--bare", is_flag=True, help="Print the ISO 8583 message alone, unframed.")
def encode(profile_name: str, json_path: Path, bare: bool) -> None:
    """Build a message from JSON and print it as hex, framed for the profile
    (length header, TPDU, STX/ETX and check) unless --bare."""
    text = sys.stdin.read() if str(json_path) == "-" else _read_text(json_path)
    profile, codec = profile_codec(profile_name)
    message = _message_from_json(codec, text)
    try:
        payload = codec.encode(message)
        click.echo((payload if bare else wrap(profile.framing, payload)).hex().upper())
    except (Iso8583Error, WireError) as exc:
        fail("encode", exc)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        fail("encode", f"{path}: {exc.strerror}")


def _message_from_json(codec: Codec, text: str) -> Message:
    try:
        doc = json.loads(text)
        mti, raw_fields = doc["mti"], doc.get("fields", {})
        fields: dict[int, FieldValue] = {}
        for key, value in raw_fields.items():
            spec = codec.field_spec(int(key))
            binary = spec is not None and spec.is_binary
            fields[int(key)] = bytes.fromhex(value) if binary else value
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        fail("encode", f"bad message JSON ({type(exc).__name__}: expected "
                        '{"mti": "0200", "fields": {"3": "000000", ...}}, binary fields as hex)')
    return Message(str(mti), fields)


@click.group()
def profiles() -> None:
    """List the shipped firmware profiles or check a profile file."""


@profiles.command("list")
def profiles_list() -> None:
    """The shipped profiles with their transport and framing."""
    table = Table("name", "transport", "framing", "description", box=None, pad_edge=False)
    for name in builtin_names():
        profile = load_profile(name)
        framing = profile.framing
        parts = [str(framing.envelope if framing.envelope != "none" else framing.length_header)]
        if framing.tpdu:
            parts.append("tpdu")
        table.add_row(name, profile.transport.kind, "+".join(parts), profile.description)
    Console().print(table)


@profiles.command("check")
@click.argument("paths", nargs=-1, required=True)
def profiles_check(paths: tuple[str, ...]) -> None:
    """Validate profile files; print every problem as file: key: reason."""
    failed = False
    for path in paths:
        problems = check_profile(path)
        for problem in problems:
            click.echo(str(problem), err=True)
        if problems:
            failed = True
        else:
            click.echo(f"{path}: ok")
    if failed:
        sys.exit(1)
