"""`posgw simulate`: simulated terminals against a running gateway."""

from __future__ import annotations

import sys

import click

from posgw.cli.common import fail, firmware_profile


class _SimulateCommand(click.Command):
    """`posgw simulate --help` lists every scenario, read from the registry on demand."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from posgw.simulator.scenarios import SCENARIOS

        with formatter.section("Scenarios"):
            formatter.write_dl([(name, s.summary) for name, s in SCENARIOS.items()])


@click.command(cls=_SimulateCommand)
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
@click.option("--terminal-id", default="T0000001", show_default=True,
              help="Field 41. With --rate, the first load terminal's id; the others count "
                   "up from it (T0000001, T0000002, ...).")
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
    from posgw.drivers.base import LinkClosed
    from posgw.simulator.runner import LoadPlan, Target, run_simulation
    from posgw.simulator.scenarios import SCENARIOS

    targets = [t for t in (("tcp", tcp_address), ("serial", serial_path), ("usb", usb_id))
               if t[1] is not None]
    if len(targets) != 1:
        fail("simulate", "give exactly one of --tcp, --serial or --usb")
    names = list(SCENARIOS) if "all" in scenario_names or not (scenario_names or rate) \
        else list(scenario_names)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        fail("simulate", f"unknown scenario {unknown[0]!r}; see --help")
    if rate:
        from posgw.simulator.loadgen import terminal_ids

        try:
            terminal_ids(terminal_id, terminals)
        except ValueError as exc:
            fail("simulate", f"--terminal-id: {exc}")
    profile = firmware_profile(profile_name)
    kind, address = targets[0]
    load = LoadPlan(terminals, rate, duration) if rate else None
    try:
        ok = run_simulation(profile, Target(kind, str(address), usb_relay), scenarios=names,
                            load=load, terminal_id=terminal_id, merchant_id=merchant_id,
                            response_timeout_s=response_timeout)
    except (OSError, ValueError, LinkClosed) as exc:
        fail("simulate", exc)
    except ExceptionGroup as group:  # from the load run's task group
        first = _first_leaf(group)
        if not isinstance(first, OSError | ValueError | LinkClosed):
            raise
        fail("simulate", first)
    if not ok:
        sys.exit(1)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception a (nested) group holds: the one to name in one line."""
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
