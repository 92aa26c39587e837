"""`posgw acquirer`: the acquirer-host simulator."""

from __future__ import annotations

import click

from posgw.cli.common import fail, firmware_profile


@click.command()
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

    profile = firmware_profile(profile_name)
    try:
        serve_acquirer(profile, listen, latency_ms / 1000)
    except (OSError, ValueError) as exc:
        fail("acquirer", exc)
