"""`posgw center merchants`: the merchant register and its fee plans.

Parsing and printing only: the register is center/settlement/merchants.py.
Exit status 0 done, 1 no such merchant, 2 bad input.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from posgw.cli.center_context import config_of
from posgw.cli.common import EXIT_NOT_FOUND, center_store, database_failed, fail, plain_table

if TYPE_CHECKING:
    from posgw.center.settlement.fees import FeePlan
    from posgw.center.settlement.merchants import MerchantView

DAY = click.DateTime(["%Y-%m-%d"])


def _plan_options(command: Any) -> Any:
    """--rate, --fixed, --minimum, --cap and --from: a fee plan."""
    for option in reversed([
        click.option("--rate", default="0.6", show_default=True, metavar="PERCENT",
                     help="Percentage of each sale's amount, e.g. 0.6 or 0.6% (at most "
                          "four decimals; kept exactly)."),
        click.option("--fixed", type=click.IntRange(min=0), default=0, show_default=True,
                     metavar="MINOR", help="Fixed fee per sale, in minor units (VND: dong)."),
        click.option("--minimum", type=click.IntRange(min=0), metavar="MINOR",
                     help="Smallest fee of one sale (none by default)."),
        click.option("--cap", type=click.IntRange(min=0), metavar="MINOR",
                     help="Largest fee of one sale (none by default)."),
        click.option("--from", "effective_from", type=DAY, metavar="YYYY-MM-DD",
                     help="First business day the plan applies to (default: today, UTC)."),
    ]):
        command = option(command)
    return command


@click.group(short_help="The merchant register and fee plans: add, show, list, set-plan.")
def merchants() -> None:
    """The merchants settlement pays, and the fee plan each has agreed to.

    A merchant is known by the terminals' merchant_id. Its settlement
    account is stored masked (first and last 4 characters): the register
    says where money went without holding a number anyone could pay from.

    A fee plan applies from its --from day until the next plan's. The fee
    of one sale is its amount times the rate, rounded half up to the minor
    unit (for VND: to the dong), plus the fixed fee, then raised to the
    minimum and lowered to the cap. The standard plan: 0.6 %, no fixed fee.

    \b
    Examples:
      posgw center -c center.toml merchants add M0001 --name "Pho 24 Le Loi" \\
          --branch B001 --account VN12ABCD0123456789 --from 2026-01-01
      posgw center -c center.toml merchants set-plan M0001 --rate 0.55 --from 2026-07-01
      posgw center -c center.toml merchants show M0001
      posgw center -c center.toml merchants list --json
    """


@merchants.command("add")
@click.argument("merchant_id")
@click.option("--name", required=True, help="The merchant's name as on its statement.")
@click.option("--branch", required=True, metavar="BRANCH_ID", help="The branch that serves it.")
@click.option("--account", required=True, metavar="NUMBER",
              help="Its settlement account (IBAN or account number); stored masked.")
@click.option("--currency", default="VND", show_default=True, metavar="CODE",
              help="ISO 4217 code the merchant is paid in.")
@_plan_options
@click.pass_context
def add(ctx: click.Context, merchant_id: str, name: str, branch: str, account: str,
        currency: str, rate: str, fixed: int, minimum: int | None, cap: int | None,
        effective_from: datetime | None) -> None:
    """Register MERCHANT_ID with its first fee plan."""
    from posgw.center.settlement.merchants import add_merchant

    plan = _plan(rate, fixed, minimum, cap, effective_from)
    view = _change(ctx, "merchants add", lambda session: add_merchant(
        session, merchant_id, name, branch, account, currency.upper(), plan))
    click.echo(_shown(view))


@merchants.command("set-plan")
@click.argument("merchant_id")
@_plan_options
@click.pass_context
def set_plan_command(ctx: click.Context, merchant_id: str, rate: str, fixed: int,
                     minimum: int | None, cap: int | None,
                     effective_from: datetime | None) -> None:
    """Give MERCHANT_ID a new plan from --from on (earlier days keep theirs)."""
    from posgw.center.settlement.merchants import set_plan

    plan = _plan(rate, fixed, minimum, cap, effective_from)
    click.echo(_shown(_change(ctx, "merchants set-plan",
                              lambda session: set_plan(session, merchant_id, plan))))


@merchants.command("show")
@click.argument("merchant_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def show(ctx: click.Context, merchant_id: str, as_json: bool) -> None:
    """A merchant, its masked account and its plans."""
    from posgw.center.settlement.merchants import RegisterError, show_merchant

    try:
        view = _read(ctx, "merchants show", lambda session: show_merchant(session, merchant_id))
    except RegisterError as exc:
        fail("center merchants show", exc, EXIT_NOT_FOUND)
    click.echo(json.dumps(_json(view), indent=2) if as_json else _shown(view))


@merchants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """Every registered merchant with the plan it has today."""
    from posgw.center.settlement.merchants import list_merchants, plan_in_force

    views = _read(ctx, "merchants list", list_merchants)
    if as_json:
        click.echo(json.dumps([_json(view) for view in views], indent=2))
        return
    today = datetime.now(UTC).date()
    rows = []
    for view in views:
        plan = plan_in_force(view.plans, today)
        rows.append((view.merchant_id, view.name, view.branch_id, view.account_masked,
                     view.currency, plan.in_words() if plan else "(none yet)"))
    click.echo(plain_table(("merchant", "name", "branch", "account", "cur", "plan today"), rows))
    if not views:
        click.echo("no merchants registered (`merchants add` registers one)", err=True)


def _plan(rate: str, fixed: int, minimum: int | None, cap: int | None,
          effective_from: datetime | None) -> FeePlan:
    from posgw.center.settlement.fees import FeePlan, FeePlanError, parse_rate

    day = effective_from.date() if effective_from else datetime.now(UTC).date()
    try:
        return FeePlan(day, parse_rate(rate), fixed, minimum, cap)
    except FeePlanError as exc:
        raise click.BadParameter(str(exc)) from None


def _change(ctx: click.Context, what: str, action: Any) -> MerchantView:
    from posgw.center.settlement.merchants import RegisterError

    try:
        view: MerchantView = _read(ctx, what, action, create=True)
        return view
    except RegisterError as exc:
        fail(f"center {what}", exc)


def _read(ctx: click.Context, what: str, action: Any, *, create: bool = False) -> Any:
    """Run `action(session)` on the center database (made when `create`)."""
    from sqlalchemy.exc import SQLAlchemyError

    config = config_of(ctx)
    store = center_store(config, f"center {what}", create=create)
    try:
        with store.session() as session:
            return action(session)
    except SQLAlchemyError as exc:
        database_failed(f"center {what}", config.database, exc)
    finally:
        store.close()


def _json(view: MerchantView) -> dict[str, Any]:
    body = asdict(view)
    body["plans"] = [{**asdict(plan), "effective_from": plan.effective_from.isoformat(),
                      "in_words": plan.in_words()} for plan in view.plans]
    return body


def _shown(view: MerchantView) -> str:
    head = plain_table(("", ""), [("merchant", view.merchant_id), ("name", view.name),
                                  ("branch", view.branch_id), ("account", view.account_masked),
                                  ("currency", view.currency)], header=False)
    plans = plain_table(("from", "plan"), [(plan.effective_from.isoformat(), plan.in_words())
                                           for plan in view.plans], title="fee plans")
    return f"{head}\n\n{plans}"
