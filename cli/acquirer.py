"""`posgw acquirer`: the acquirer-host simulator, and the settlement files it
sends after a business day (`posgw acquirer settlement-files`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from posgw.cli.common import fail, firmware_profile


@click.group(invoke_without_command=True)
@click.option("-p", "--profile", "profile_name", default="iso87-binary", show_default=True,
              help="Profile of the host link (framing and ISO 8583 dialect).")
@click.option("--listen", default="127.0.0.1:5000", show_default=True, metavar="HOST:PORT")
@click.option("--latency-ms", type=int, default=0, show_default=True,
              help="Added to every answer.")
@click.pass_context
def acquirer(ctx: click.Context, profile_name: str, listen: str, latency_ms: int) -> None:
    """Run the acquirer-host simulator (ISO 8583 over TCP) with the demo cards.

    It verifies PIN blocks and answers 00, 51, 55, 61, 65, 75 and 91 as each
    card's state says; reversals restore balances; 0800 echo is answered.
    Stop with Ctrl-C. `posgw acquirer settlement-files` writes the files an
    acquirer and a bank send after a day instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from posgw.simulator.runner import serve_acquirer

    profile = firmware_profile(profile_name)
    try:
        serve_acquirer(profile, listen, latency_ms / 1000)
    except (OSError, ValueError) as exc:
        fail("acquirer", exc)


def _rate(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a decimal rate (0.0062 is 0.62 %)") from None
    if not Decimal(0) <= rate < Decimal(1):
        raise click.BadParameter("a rate is between 0 and 1 (0.0062 is 0.62 %)")
    return rate


def _late(_ctx: click.Context, _param: click.Parameter,
          value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    merchant, _, days = value.partition(":")
    if not merchant or not days.isdigit() or not 1 <= int(days) <= 365:
        raise click.BadParameter("MERCHANT:DAYS, e.g. M0002:3")
    return merchant, int(days)


@acquirer.command("settlement-files")
@click.option("--out", "directory", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory the two files are written to (created).")
@click.option("--sales", "sales_path", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), help="What the acquirer approved (CSV; docs/settlement.md).")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]),
              help="Generate the sales of this day instead of reading --sales.")
@click.option("--merchants", type=click.IntRange(1, 10_000), default=3, show_default=True)
@click.option("--per-merchant", type=click.IntRange(1, 100_000), default=20,
              show_default=True, help="Generated sales per merchant.")
@click.option("--currency", default="VND", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--rate", callback=_rate, help="Fault: charge this rate (plan: 0.006).")
@click.option("--fixed-fee-minor", type=click.IntRange(0, 10**9), default=0,
              help="Fault: a fixed fee per sale, in minor units (100 = 1.00 USD).")
@click.option("--fee-merchant", "fee_merchants", multiple=True,
              help="Only these merchants get the --rate/--fixed-fee fault (default: all).")
@click.option("--duplicate-rrn", help="Fault: settle this RRN's line twice.")
@click.option("--missing-credit", metavar="MERCHANT", help="Fault: never credit this merchant.")
@click.option("--late-credit", callback=_late, metavar="MERCHANT:DAYS",
              help="Fault: credit this merchant DAYS after the due date.")
def settlement_files(directory: Path, sales_path: Path | None, day: datetime | None,
                     merchants: int, per_merchant: int, currency: str, seed: int,
                     rate: Decimal | None, fixed_fee_minor: int, fee_merchants: tuple[str, ...],
                     duplicate_rrn: str | None, missing_credit: str | None,
                     late_credit: tuple[str, int] | None) -> None:
    """Write the acquirer's settlement CSV and the bank's camt.053 for a day.

    The sales come from --sales, or are generated for --date. The fee plan
    is the standard one (0.6 %, no fixed fee); the options inject faults.
    """
    from posgw.simulator.settlement_files import SettlementFaults, write_settlement_files
    from posgw.simulator.settlement_sales import generated_sales, read_sales_csv

    if (sales_path is None) == (day is None):
        fail("settlement-files", "give either --sales FILE or --date YYYY-MM-DD")
    faults = SettlementFaults(rate=rate, fixed_fee_minor=fixed_fee_minor,
                              fee_merchants=frozenset(fee_merchants) or None,
                              duplicate_line=duplicate_rrn, missing_credit=missing_credit,
                              late_credit=late_credit)
    try:
        sales = (read_sales_csv(sales_path) if sales_path is not None else
                 list(generated_sales(day.date() if day else datetime.now(UTC).date(),
                                      merchants, per_merchant, currency=currency.upper(),
                                      seed=seed)))
        directory.mkdir(parents=True, exist_ok=True)
        files = write_settlement_files(directory, sales, faults=faults,
                                       created=datetime.now(UTC).replace(microsecond=0))
    except (OSError, ValueError) as exc:
        fail("settlement-files", exc)
    click.echo(f"{files.acquirer_csv}: {len(files.lines)} lines")
    click.echo(f"{files.camt053}: {len(files.credits)} credits")
