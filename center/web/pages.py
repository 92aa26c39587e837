"""The signed-in pages. Each is a synchronous handler (it reads the
database in Starlette's thread pool) made a route by `page(role)`."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import RedirectResponse, Response

from posgw.center.queries import by_event_id, linked_events
from posgw.center.web import audit
from posgw.center.web.accounts import AccountError, list_users, set_language
from posgw.center.web.guard import PageCall, client_of, page
from posgw.center.web.search import CARD_NUMBER, KINDS, SearchRefused, read_form, run_search
from posgw.center.web.story import story

#: What the audit page lists, newest first; the CSV export takes more.
AUDIT_PAGE_ROWS = 200
AUDIT_CSV_ROWS = 100_000


@page("viewer")
def home(call: PageCall) -> Response:
    return RedirectResponse("/dashboard", status_code=303)


@page("viewer")
def search_form(call: PageCall) -> Response:
    return call.console.render(call.request, "search.html", call.user, kinds=KINDS,
                               form={"kind": "card"}, results=None, refused="")


@page("viewer")
def search_submit(call: PageCall) -> Response:
    """POST, so that what was typed stays out of URLs, history and access logs."""
    engine, name = call.console.engine, call.user.account.name
    try:
        form = read_form(call.form)
        with call.console.store.session() as session:
            results = run_search(session, form, datetime.now(UTC).date())
    except SearchRefused as refused:
        why = str(refused)
        audit.record(engine, name, "search", "refused", object=why,
                     client=client_of(call.request))
        # A refused card number is not shown back: the form comes back empty.
        shown = {"kind": call.form.get("kind", "card")} if why == CARD_NUMBER else call.form
        return call.console.render(call.request, "search.html", call.user, kinds=KINDS,
                                   form=shown, results=None, refused=why, status_code=400)
    audit.record(engine, name, "search", "ok", object=f"{form.get('kind')}: {len(results)}",
                 client=client_of(call.request))
    return call.console.render(call.request, "search.html", call.user, kinds=KINDS,
                               form=form.fields, results=results, refused="")


@page("viewer")
def transaction(call: PageCall) -> Response:
    event_id = call.request.path_params["event_id"][:64]
    with call.console.store.session() as session:
        event = by_event_id(session, event_id)
        linked = linked_events(session, event) if event is not None else []
    audit.record(call.console.engine, call.user.account.name, "view transaction",
                 "ok" if event else "not found", object=event_id,
                 client=client_of(call.request))
    if event is None:
        return call.console.render(call.request, "not_found.html", call.user,
                                   status_code=404)
    lang = call.console.language_for(call.request, call.user)
    return call.console.render(call.request, "transaction.html", call.user,
                               story=story(event, linked, lang))


@page("viewer")
def account_language(call: PageCall) -> Response:
    language = call.form.get("language", "")
    try:
        set_language(call.console.engine, call.user.account.name, language)
        outcome = "ok"
    except AccountError:
        outcome = "refused"
    audit.record(call.console.engine, call.user.account.name, "set language", outcome,
                 object=language[:16], client=client_of(call.request))
    return RedirectResponse("/search", status_code=303)


@page("admin")
def admin_users(call: PageCall) -> Response:
    return call.console.render(call.request, "users.html", call.user,
                               accounts=list_users(call.console.engine))


@page("admin")
def admin_audit(call: PageCall) -> Response:
    return call.console.render(call.request, "audit.html", call.user,
                               entries=audit.latest(call.console.engine, AUDIT_PAGE_ROWS))


@page("admin")
def admin_audit_csv(call: PageCall) -> Response:
    entries = audit.latest(call.console.engine, AUDIT_CSV_ROWS)
    audit.record(call.console.engine, call.user.account.name, "export audit", "ok",
                 object=f"{len(entries)} rows", client=client_of(call.request))
    return Response(audit.as_csv(entries), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="audit.csv"'})
