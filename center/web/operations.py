"""The operations pages: the fleet (and retiring a terminal), the batches
that did not reconcile, the dashboard. Each handler is synchronous (it
reads the database in Starlette's thread pool) and made a route by
`page(role)`: viewers read, only admins decommission."""

from __future__ import annotations

from datetime import UTC, date, datetime

from starlette.responses import RedirectResponse, Response

from posgw.center.web import audit, charts
from posgw.center.web import dashboard as figures
from posgw.center.web.decommission import NoCommandKey, decommission
from posgw.center.web.fleet import (
    DECOMMISSIONED,
    gateways,
    is_identifier,
    terminal_detail,
    terminals,
)
from posgw.center.web.guard import PageCall, client_of, page
from posgw.center.web.reconciliation import mismatches

#: The confirmation form's field: the terminal id, typed again.
CONFIRM_FIELD = "confirm_terminal"
#: Why a decommission was not sent (msgids: the page translates them).
ALREADY_RETIRED = "This terminal is decommissioned already."
NOT_CONFIRMED = "Type the terminal id exactly to confirm."
NO_COMMAND_KEY = ("The center has no command key: nothing was sent. "
                  "Set [center] command_key (posgw center command-key).")
MESSAGES = (ALREADY_RETIRED, NOT_CONFIRMED, NO_COMMAND_KEY)


@page("viewer")
def fleet(call: PageCall) -> Response:
    console = call.console
    return console.render(call.request, "fleet.html", call.user,
                          gateways=gateways(console.store, console.config),
                          branches=terminals(console.engine))


def _terminal_of(call: PageCall) -> tuple[str, str] | None:
    branch = call.request.path_params["branch"]
    terminal = call.request.path_params["terminal"]
    if not (is_identifier(branch) and is_identifier(terminal)):
        return None
    return branch, terminal


@page("viewer")
def fleet_terminal(call: PageCall) -> Response:
    where = _terminal_of(call)
    detail = None if where is None else terminal_detail(call.console.engine, *where)
    if detail is None:
        return call.console.render(call.request, "not_found.html", call.user, status_code=404)
    return call.console.render(call.request, "terminal.html", call.user, detail=detail)


@page("admin")
def decommission_confirm(call: PageCall) -> Response:
    return _confirm_page(call, error="")


def _confirm_page(call: PageCall, error: str, status_code: int = 200) -> Response:
    where = _terminal_of(call)
    detail = None if where is None else terminal_detail(call.console.engine, *where)
    if detail is None:
        return call.console.render(call.request, "not_found.html", call.user, status_code=404)
    if not error and detail.terminal.state == DECOMMISSIONED:
        error, status_code = ALREADY_RETIRED, 409
    return call.console.render(call.request, "decommission.html", call.user, detail=detail,
                               confirm_field=CONFIRM_FIELD, error=error,
                               status_code=status_code)


@page("admin")
def decommission_submit(call: PageCall) -> Response:
    """Sends the command only when the terminal id was typed again."""
    where = _terminal_of(call)
    detail = None if where is None else terminal_detail(call.console.engine, *where)
    if where is None or detail is None:
        return call.console.render(call.request, "not_found.html", call.user, status_code=404)
    branch, terminal = where
    console, actor, shown = call.console, call.user.account.name, f"{branch}/{terminal}"
    if detail.terminal.state == DECOMMISSIONED:
        return _confirm_page(call, ALREADY_RETIRED, 409)
    if call.form.get(CONFIRM_FIELD, "").strip() != terminal:
        audit.record(console.engine, actor, "decommission", "unconfirmed", object=shown,
                     client=client_of(call.request))
        return _confirm_page(call, NOT_CONFIRMED, 400)
    try:
        request = decommission(console.config, console.store, branch, terminal, actor)
    except NoCommandKey:
        audit.record(console.engine, actor, "decommission", "no key", object=shown,
                     client=client_of(call.request))
        return _confirm_page(call, NO_COMMAND_KEY, 409)
    audit.record(console.engine, actor, "decommission", request.outcome, object=shown,
                 client=client_of(call.request))
    return RedirectResponse(f"/fleet/{branch}/{terminal}", status_code=303)


@page("viewer")
def reconciliation(call: PageCall) -> Response:
    params = call.request.query_params
    day_text, branch = params.get("day", "")[:10], params.get("branch", "")[:32]
    day = _day(day_text)
    if (day_text and day is None) or (branch and not is_identifier(branch)):
        return call.console.render(call.request, "reconciliation.html", call.user,
                                   rows=[], day=day_text, branch=branch, refused=True,
                                   status_code=400)
    lang = call.console.language_for(call.request, call.user)
    rows = mismatches(call.console.engine, day, branch, lang.gettext, lang.money)
    return call.console.render(call.request, "reconciliation.html", call.user, rows=rows,
                               day=day_text, branch=branch, refused=False)


@page("viewer")
def dashboard(call: PageCall) -> Response:
    """Today (UTC), or the day `?day=` names."""
    day = _day(call.request.query_params.get("day", "")[:10]) or datetime.now(UTC).date()
    engine = call.console.engine
    freeze = figures.freeze_days(engine, day)
    busiest: dict[str, int] = {}
    for row in freeze:
        busiest[row.branch_id] = busiest.get(row.branch_id, 0) + row.judged
    branches = sorted(busiest, key=lambda b: (-busiest[b], b))[:figures.MAX_BRANCHES]
    freeze_chart = charts.freeze_lines({(row.day, row.branch_id): row.rate for row in freeze},
                                       figures.days_of_freeze_chart(day), sorted(branches))
    return call.console.render(
        call.request, "dashboard.html", call.user, day=day.isoformat(),
        totals=figures.today_totals(engine, day),
        hourly_chart=charts.hourly_bars(figures.hourly(engine, day)),
        freeze_chart=freeze_chart, quarantine=figures.quarantined_by_kind(engine))


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None
