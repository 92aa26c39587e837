"""The `posgw` command line: parse arguments, call the code that does the work.

Bad input exits with status 2 and one line on stderr naming what is wrong
(for a message: the field and the byte offset). Output never carries a PAN
in clear.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from posgw.gateway import message_view
from posgw.gateway.profiles import builtin_names, check_profile, load_profile
from posgw.gateway.wire import WireError, unwrap, wrap
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import Iso8583Error
from posgw.protocols.iso8583.message import FieldValue, Message

EXIT_BAD_INPUT = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="posgw")
def main() -> None:
    """posgw: POS terminal integration gateway.

    Talks to card terminals over serial, USB and TCP using per-model firmware
    profiles, gets requests authorized, holds risky ones, and forwards every
    final transaction to the payment center over MQTT.

    \b
    Start here:
      posgw profiles list                      the shipped terminal profiles
      posgw decode --profile iso87-ascii --file samples/iso87-ascii-purchase.bin
      posgw decode -p iso87-mixed --hex 0200... --json
    """


def _fail(what: str, reason: object) -> NoReturn:
    click.echo(f"posgw {what}: {reason}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _codec(profile_name: str) -> tuple[Any, Codec]:
    try:
        profile = load_profile(profile_name)
    except Iso8583Error as exc:
        _fail("profile", exc)
    return profile, Codec(profile.iso8583)


@main.command()
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
    profile, codec = _codec(profile_name)
    try:
        payload, envelope = (data, None) if bare else unwrap(profile.framing, data)
        message = codec.decode(payload)
        view = message_view.message_json(codec, message)
    except (Iso8583Error, WireError) as exc:
        _fail("decode", exc)
    if envelope is not None and envelope.tpdu is not None:
        view["tpdu"] = envelope.tpdu.to_bytes().hex().upper()
    if as_json:
        click.echo(json.dumps(view, indent=2))
    else:
        _print_dump(profile.name, codec, message, view, len(data))


def _input_bytes(hex_text: str | None, file_path: Path | None) -> bytes:
    if (hex_text is None) == (file_path is None):
        _fail("decode", "give exactly one of --hex or --file")
    if file_path is not None:
        try:
            return file_path.read_bytes()
        except OSError as exc:
            _fail("decode", f"{file_path}: {exc.strerror}")
    try:
        return bytes.fromhex("".join((hex_text or "").split()))
    except ValueError:
        _fail("decode", "--hex holds a non-hex character or an odd number of digits")


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


@main.command()
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
    profile, codec = _codec(profile_name)
    message = _message_from_json(codec, text)
    try:
        payload = codec.encode(message)
        click.echo((payload if bare else wrap(profile.framing, payload)).hex().upper())
    except (Iso8583Error, WireError) as exc:
        _fail("encode", exc)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        _fail("encode", f"{path}: {exc.strerror}")


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
        _fail("encode", f"bad message JSON ({type(exc).__name__}: expected "
                        '{"mti": "0200", "fields": {"3": "000000", ...}}, binary fields as hex)')
    return Message(str(mti), fields)


@main.group()
def profiles() -> None:
    """List the shipped firmware profiles or check a profile file."""


@profiles.command("list")
def profiles_list() -> None:
    """The shipped profiles with their transport and framing."""
    table = Table("name", "transport", "framing", "description", box=None, pad_edge=False)
    for name in builtin_names():
        profile = load_profile(name)
        framing = profile.framing
        parts = [framing.envelope if framing.envelope != "none" else framing.length_header]
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


# --- simulators (imported lazily: only these commands need them) -------------


class _SimulateCommand(click.Command):
    """`posgw simulate --help` lists every scenario, read from the registry on demand."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from posgw.simulator.scenarios import SCENARIOS

        with formatter.section("Scenarios"):
            formatter.write_dl([(name, s.summary) for name, s in SCENARIOS.items()])


@main.command(cls=_SimulateCommand)
@click.option("-p", "--profile", "profile_name", default="iso87-ascii", show_default=True,
              help="Firmware profile the simulated terminals speak.")
@click.option("--tcp", "tcp_address", metavar="HOST:PORT", help="Dial a gateway listener.")
@click.option("--serial", "serial_path", metavar="PATH",
              help="Open a serial line (e.g. the slave of a pty pair the gateway reads).")
@click.option("--usb", "usb_id", metavar="[VID:PID]", is_flag=False, flag_value="",
              default=None, help="Open a USB device (default: the profile's first USB id).")
@click.option("--usb-relay", metavar="HOST:PORT",
              help="Reach an emulated USB device through its relay server.")
@click.option("-s", "--scenario", "scenario_names", multiple=True, metavar="NAME",
              help="A scenario to run (repeatable), or `all`. Default: all, unless --rate.")
@click.option("--terminals", default=1, show_default=True, help="Terminals for the load run.")
@click.option("--rate", type=float, help="Requests per second per terminal: runs the load.")
@click.option("--duration", type=float, default=10.0, show_default=True,
              help="Seconds the load run lasts.")
@click.option("--terminal-id", default="T0000001", show_default=True, help="Field 41.")
@click.option("--merchant-id", default="M00000000000001", show_default=True, help="Field 42.")
@click.option("--response-timeout", type=float, default=5.0, show_default=True,
              help="Seconds a terminal waits for a response before reversing.")
def simulate(profile_name: str, tcp_address: str | None, serial_path: str | None,
             usb_id: str | None, usb_relay: str | None, scenario_names: tuple[str, ...],
             terminals: int, rate: float | None, duration: float, terminal_id: str,
             merchant_id: str, response_timeout: float) -> None:
    """Simulated terminals against a running gateway: scenarios and load.

    Give exactly one of --tcp, --serial or --usb. Results end in a table;
    the exit status is 1 when a scenario's checks failed. Checks assume the
    demo cards of the acquirer simulator (`posgw acquirer`) upstream.
    """
    from posgw.simulator.runner import LoadPlan, Target, run_simulation
    from posgw.simulator.scenarios import SCENARIOS

    targets = [t for t in (("tcp", tcp_address), ("serial", serial_path), ("usb", usb_id))
               if t[1] is not None]
    if len(targets) != 1:
        _fail("simulate", "give exactly one of --tcp, --serial or --usb")
    names = list(SCENARIOS) if "all" in scenario_names or not (scenario_names or rate) \
        else list(scenario_names)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        _fail("simulate", f"unknown scenario {unknown[0]!r}; see --help")
    profile, _ = _codec(profile_name)
    kind, address = targets[0]
    load = LoadPlan(terminals, rate, duration) if rate else None
    try:
        ok = run_simulation(profile, Target(kind, str(address), usb_relay), scenarios=names,
                            load=load, terminal_id=terminal_id, merchant_id=merchant_id,
                            response_timeout_s=response_timeout)
    except (OSError, ValueError) as exc:
        _fail("simulate", exc)
    if not ok:
        sys.exit(1)


@main.command()
@click.option("-p", "--profile", "profile_name", default="iso87-binary", show_default=True,
              help="Profile of the host link (framing and ISO 8583 dialect).")
@click.option("--listen", default="127.0.0.1:5000", show_default=True, metavar="HOST:PORT")
@click.option("--latency-ms", type=int, default=0, show_default=True,
              help="Added to every answer.")
def acquirer(profile_name: str, listen: str, latency_ms: int) -> None:
    """Run the acquirer-host simulator (ISO 8583 over TCP) with the demo cards.

    It verifies PIN blocks and answers 00, 51, 55, 61, 65, 75 and 91 as each
    card's state says; reversals restore balances; 0800 echo is answered.
    Stop with Ctrl-C.
    """
    from posgw.simulator.runner import serve_acquirer

    profile, _ = _codec(profile_name)
    try:
        serve_acquirer(profile, listen, latency_ms / 1000)
    except (OSError, ValueError) as exc:
        _fail("acquirer", exc)


# --- commands in their own modules (each imports what it needs lazily) ------

from posgw.cli.center import center  # noqa: E402
from posgw.cli.demo import demo  # noqa: E402
from posgw.cli.keys import keys  # noqa: E402
from posgw.cli.ops import cases, terminals  # noqa: E402
from posgw.cli.run import run  # noqa: E402
from posgw.cli.status import status  # noqa: E402

for _command in (run, demo, status, keys, center, cases, terminals):
    main.add_command(_command)
