"""`posgw center settlement`: import files, match, findings, reports.

Parsing and printing only: the work is in center/settlement/. Exit status
0 done, 1 nothing found (no such case), 2 bad input or a refused file.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.exc import SQLAlchemyError

from posgw.cli.center_context import config_of
from posgw.cli.common import EXIT_NOT_FOUND, center_store, database_failed, fail, plain_table

if TYPE_CHECKING:
    from posgw.center.db import CenterStore
    from posgw.center.settlement.imports import ImportResult

DAY = click.DateTime(["%Y-%m-%d"])
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(short_help="Merchant settlement: import, match, findings, reports.")
def settlement() -> None:
    """What each merchant is owed, what the acquirer settled, what the bank
    credited, and the wrong deductions found between them.

    \b
    A day's work:
      1. import the acquirer's settlement report and the bank's statement
      2. match: every finding opens a case (S-1, S-2, ...) once
      3. findings --open: the cases to answer (first response within 24 h)
      4. resolve S-17 --note "refund of 62,000 VND agreed with the acquirer"

    \b
    Examples:
      posgw center -c center.toml settlement import acquirer-csv acq-20260310.csv
      posgw center -c center.toml settlement import camt053 bank-20260311.xml
      posgw center -c center.toml settlement match --date 2026-03-10
      posgw center -c center.toml settlement findings --open
      posgw center -c center.toml settlement resolve S-17 --note "refunded"
      posgw center -c center.toml settlement report --merchant M0001 --date 2026-03-10 --json
      posgw center -c center.toml settlement statement --merchant M0001 --month 2026-03 \\
          --out M0001-2026-03.pdf
    """


@settlement.group("import", short_help="Store an acquirer report or a bank statement.")
def import_group() -> None:
    """Store a settlement file. A file imported again changes nothing; a
    malformed one is refused with the line or element that is wrong, and
    nothing of it is stored."""


@import_group.command("acquirer-csv")
@click.argument("path", metavar="FILE", type=FILE)
@click.option("--mapping", "mappings", multiple=True, metavar="OURS=THEIRS",
              help="Read our column OURS from their column THEIRS, for an acquirer whose "
                   "header differs, e.g. --mapping rrn=RetrievalRef (repeat for each).")
@click.pass_context
def import_acquirer(ctx: click.Context, path: Path, mappings: tuple[str, ...]) -> None:
    """The acquirer's settlement report: one line per transaction.

    \b
    Header (any order, other columns ignored):
      date,merchant_id,terminal_id,rrn,stan,amount,fee,net,currency
    Amounts in major units with the currency's digits (125000 VND,
    125.00 USD); a return is negative; net must be amount - fee.
    """
    from posgw.center.settlement.acquirer_csv import (
        AcquirerCsvError,
        csv_bytes,
        read_acquirer_csv,
    )
    from posgw.center.settlement.imports import file_sha256, store_acquirer_lines

    mapping = _mapping(mappings)
    try:
        data = csv_bytes(path)
        lines = read_acquirer_csv(data, mapping)
    except AcquirerCsvError as exc:
        fail("center settlement import", f"{path}: refused, nothing stored: {exc}")
    result = _store(ctx, lambda conn: store_acquirer_lines(conn, file_sha256(data), path.name,
                                                           lines))
    _print_import(result, "lines")


@import_group.command("camt053")
@click.argument("path", metavar="FILE", type=FILE)
@click.pass_context
def import_camt(ctx: click.Context, path: Path) -> None:
    """The bank's statement of the merchant accounts (ISO 20022 camt.053),
    or its credit notifications (camt.054): validated against the official
    schema of its version; credits are stored with the account masked."""
    from posgw.center.settlement.camt import CamtError, camt_bytes, read_camt
    from posgw.center.settlement.imports import file_sha256, store_bank_credits

    try:
        data = camt_bytes(path)
        credits = read_camt(data)
    except CamtError as exc:
        fail("center settlement import", f"{path}: refused, nothing stored: {exc}")
    result = _store(ctx, lambda conn: store_bank_credits(conn, file_sha256(data), path.name,
                                                         credits))
    _print_import(result, "credits")


import_group.add_command(import_camt, "camt054")


@settlement.command(short_help="Find wrong deductions; each opens a case once.")
@click.option("--date", "day", type=DAY, metavar="YYYY-MM-DD", help="One business day.")
@click.option("--month", metavar="YYYY-MM", help="Every day of a month.")
@click.option("--as-of", type=DAY, metavar="YYYY-MM-DD",
              help="Judge credits as of this day (default: today, UTC).")
@click.pass_context
def match(ctx: click.Context, day: datetime | None, month: str | None,
          as_of: datetime | None) -> None:
    """Match the center's events with the acquirer's lines and the bank's
    credits, per transaction and per merchant-day (default: yesterday, UTC).

    \b
    Findings (each opens a case, once; running again adds nothing):
      fee_above_plan           a rate above the plan, or a fixed charge per sale
      charged_twice            one sale settled more than once
      failed_but_charged       settled there, declined or reversed here
      missing_from_settlement  approved here, absent from the acquirer's report
      credit_missing           nothing credited by the value date + grace
      credit_short             less credited than settled
      unknown                  settled there, unknown here
    """
    from posgw.center.settlement.match import run_matching

    first, last = _days(day, month)
    config = config_of(ctx)
    with _center(ctx, "match") as store, click.progressbar(
            length=(last - first).days + 1, label="matching", file=sys.stderr,
            show_pos=True) as bar:
        result = run_matching(store.engine, first, last, calendar=config.calendar,
                              settlement=config.settlement,
                              as_of=as_of.date() if as_of else None,
                              progress=lambda _day: bar.update(1))
    rows = [(kind, str(result.found[kind]), str(result.opened[kind]))
            for kind in sorted(result.found)]
    title = f"{first} .. {last}: {result.days} day(s)"
    if not rows:
        click.echo(f"{title}: no findings")
        return
    click.echo(plain_table(("finding", "found", "new cases"), rows, title=title, right=(1, 2)))


@settlement.command(short_help="The cases findings opened.")
@click.option("--open", "only_open", is_flag=True, help="Only cases not resolved yet.")
@click.option("--merchant", metavar="MERCHANT_ID", help="Only this merchant's.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (with evidence).")
@click.pass_context
def findings(ctx: click.Context, only_open: bool, merchant: str | None, as_json: bool) -> None:
    """Settlement cases, oldest first; OVERDUE marks an open case past its
    24-hour first-response time."""
    from posgw.center.settlement.cases import case_id, is_overdue, list_cases

    with _center(ctx, "findings") as store, store.session() as session:
        cases = list_cases(session, only_open=only_open, merchant_id=merchant)
    now = datetime.now(UTC)
    if as_json:
        click.echo(json.dumps([_case_json(row) for row in cases], indent=2, default=str))
        return
    if not cases:
        click.echo("no cases", err=True)
        return
    rows = [(case_id(row.id or 0), row.kind, row.merchant_id, row.business_date,
             str(row.amount_minor), row.currency,
             "OVERDUE" if is_overdue(row, now) else row.status) for row in cases]
    click.echo(plain_table(("case", "kind", "merchant", "day", "amount", "cur", "status"),
                           rows, right=(4,)))


@settlement.command(short_help="Record a case's resolution.")
@click.argument("case", metavar="CASE")
@click.option("--note", required=True, help="What was done (refund agreed, credit arrived...).")
@click.option("--by", metavar="NAME", help="Who resolved it (default: the login name).")
@click.pass_context
def resolve(ctx: click.Context, case: str, note: str, by: str | None) -> None:
    """Resolve CASE (e.g. S-17): its note, who and when are kept with it."""
    from posgw.center.settlement.cases import case_id, resolve_case

    with _center(ctx, "resolve") as store, store.session() as session:
        row = resolve_case(session, case, note, by or getpass.getuser())
    click.echo(f"{case_id(row.id or 0)} resolved by {row.resolved_by}")


@settlement.command(short_help="A merchant's day: owed, settled, credited, found.")
@click.option("--merchant", required=True, metavar="MERCHANT_ID")
@click.option("--date", "day", type=DAY, required=True, metavar="YYYY-MM-DD")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the owed lines as CSV.")
@click.pass_context
def report(ctx: click.Context, merchant: str, day: datetime, as_json: bool,
           as_csv: bool) -> None:
    """One merchant's business day: gross, returns, held, fee by the plan,
    net and its value date; what the acquirer settled; the credits; the cases."""
    from posgw.center.settlement.report import day_report

    if as_json and as_csv:
        raise click.UsageError("--json or --csv, not both")
    config = config_of(ctx)
    with _center(ctx, "report") as store:
        body = day_report(store.engine, merchant, day.date(), calendar=config.calendar,
                          settlement=config.settlement)
    if as_json:
        click.echo(json.dumps(body, indent=2))
    elif as_csv:
        _print_report_csv(body)
    else:
        _print_report(body)


@settlement.command(short_help="A merchant's monthly statement as a PDF.")
@click.option("--merchant", required=True, metavar="MERCHANT_ID")
@click.option("--month", required=True, metavar="YYYY-MM")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.pdf",
              help="Write the PDF here.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the statement's numbers as JSON (the PDF's, exactly).")
@click.pass_context
def statement(ctx: click.Context, merchant: str, month: str, out: Path | None,
              as_json: bool) -> None:
    """Gross, returns, fees with the plan's rate, net, the credits received
    and the open findings of MERCHANT_ID's month."""
    from posgw.center.settlement.report import monthly_statement, statement_json

    if out is None and not as_json:
        raise click.UsageError("give --out FILE.pdf, --json, or both")
    config = config_of(ctx)
    with _center(ctx, "statement") as store:
        built = monthly_statement(store.engine, merchant, month, calendar=config.calendar,
                                  settlement=config.settlement)
    if out is not None:
        from posgw.center.settlement.statement_pdf import render_statement

        out.write_bytes(render_statement(built))
        click.echo(f"wrote {out}", err=True)
    if as_json:
        click.echo(json.dumps(statement_json(built), indent=2))


def _days(day: datetime | None, month: str | None) -> tuple[date, date]:
    from datetime import timedelta

    from posgw.center.settlement.report import month_bounds

    if day is not None and month is not None:
        raise click.UsageError("--date or --month, not both")
    if month is not None:
        try:
            return month_bounds(month)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--month") from None
    on = day.date() if day else datetime.now(UTC).date() - timedelta(days=1)
    return on, on


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise click.BadParameter(f"OURS=THEIRS, e.g. rrn=RetrievalRef; got {pair!r}",
                                     param_hint="--mapping")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _store(ctx: click.Context, action: Any) -> ImportResult:
    """`action(conn)` in one transaction: all of the file, or none of it."""
    with _center(ctx, "import") as store, store.engine.begin() as conn:
        result: ImportResult = action(conn)
        return result


@contextmanager
def _center(ctx: click.Context, what: str) -> Iterator[CenterStore]:
    """The center database for one command, closed after. A refusal is one
    line on stderr: no such case exits 1, the database's problem or the
    input's (a ValueError: a bad note, an unknown merchant...) exits 2."""
    from posgw.center.settlement.cases import NoSuchCase

    config = config_of(ctx)
    command = f"center settlement {what}"
    store = center_store(config, command, create=True)
    try:
        yield store
    except SQLAlchemyError as exc:
        database_failed(command, config.database, exc)
    except NoSuchCase as exc:
        fail(command, exc, EXIT_NOT_FOUND)
    except ValueError as exc:
        fail(command, exc)
    finally:
        store.close()


def _print_import(result: ImportResult, what: str) -> None:
    if result.already_imported:
        click.echo(f"{result.name}: already imported (sha256 {result.sha256[:16]}...); "
                   "nothing changed")
        return
    skipped = result.records - result.stored
    click.echo(f"{result.name}: {result.stored} {what} stored"
               + (f", {skipped} already stored from another file" if skipped else ""))


def _print_report(body: dict[str, Any]) -> None:
    owed = [(o["currency"], str(o["sales"]), str(o["gross_minor"]), str(o["returns_minor"]),
             str(o["held_minor"]), str(o["fee_minor"]), str(o["net_minor"]), o["value_date"])
            for o in body["owed"]]
    title = f"{body['merchant_id']} {body['business_date']}: owed by the plan"
    if owed:
        click.echo(plain_table(("cur", "sales", "gross", "returns", "held", "fee", "net",
                                "value date"), owed, right=range(1, 7), title=title))
    else:
        click.echo(f"{title}: no sales, returns or freezes stored for that day")
    acquirer = body["acquirer"]
    click.echo(f"\nacquirer: {acquirer['lines']} lines, amount {acquirer['amount_minor']}, "
               f"fee {acquirer['fee_minor']}, net {acquirer['net_minor']}")
    for credit in body["credits"]:
        click.echo(f"credit {credit['entry_ref']}: {credit['amount_minor']} "
                   f"value {credit['value_date']}")
    for case in body["findings"]:
        click.echo(f"{case['case_id']} {case['kind']} {case['amount_minor']} {case['status']}")


def _print_report_csv(body: dict[str, Any]) -> None:
    import csv

    columns = ("merchant_id", "business_date", "currency", "sales", "gross_minor",
               "returns_minor", "held_minor", "fee_minor", "net_minor", "value_date")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for owed in body["owed"]:
        writer.writerow([body["merchant_id"], *(owed[column] for column in columns[1:])])


def _case_json(row: Any) -> dict[str, Any]:
    from posgw.center.settlement.cases import case_id

    return {"case_id": case_id(row.id or 0), "kind": row.kind, "merchant_id": row.merchant_id,
            "business_date": row.business_date, "amount_minor": row.amount_minor,
            "currency": row.currency, "evidence": row.evidence, "status": row.status,
            "opened_at": row.opened_at, "first_response_due_at": row.first_response_due_at,
            "resolution": row.resolution, "resolved_at": row.resolved_at,
            "resolved_by": row.resolved_by}
