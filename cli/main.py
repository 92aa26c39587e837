"""The `posgw` command line: the group and where each command lives.

Every command is imported only when it runs (cli/lazy.py): `posgw status`
loads the status module and the gateway store, not the center, the
simulators or the codec. Bad input exits with status 2 and one line on
stderr (cli/common.py). Output never carries a PAN in clear.
"""

from __future__ import annotations

import click

from posgw.cli.lazy import LazyCommand, LazyGroup

#: Command name -> where it lives and its line in `posgw --help`.
COMMANDS: dict[str, LazyCommand] = {
    "acquirer": LazyCommand("posgw.cli.acquirer:acquirer",
                            "Run the acquirer-host simulator (ISO 8583 over TCP)."),
    "cases": LazyCommand("posgw.cli.ops:cases",
                         "Freeze cases: list, show, evidence, release, return, expire."),
    "center": LazyCommand("posgw.cli.center:center",
                          "The payment center: ingest, query, totals, commands."),
    "decode": LazyCommand("posgw.cli.codec:decode",
                          "Dump a message: fields, TLV, the normalized transaction."),
    "demo": LazyCommand("posgw.cli.demo:demo",
                        "Run the whole system on this machine and check nothing was lost."),
    "encode": LazyCommand("posgw.cli.codec:encode",
                          "Build a message from JSON and print it as hex."),
    "keys": LazyCommand("posgw.cli.keys:keys",
                        "Generate, rotate or inspect the gateway's keys."),
    "profiles": LazyCommand("posgw.cli.codec:profiles",
                            "List the shipped firmware profiles or check a profile file."),
    "run": LazyCommand("posgw.cli.run:run", "Run the gateway daemon until SIGTERM or Ctrl-C."),
    "simulate": LazyCommand("posgw.cli.simulate:simulate",
                            "Simulated terminals against a running gateway."),
    "status": LazyCommand("posgw.cli.status:status",
                          "Daemon, broker, terminals, totals and outbox of a gateway."),
    "terminals": LazyCommand("posgw.cli.ops:terminals",
                             "The branch's terminals: list, decommission, statement."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
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
