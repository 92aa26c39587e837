"""The public pages: sign in, and signing out.

The login form has no session yet, so its CSRF token is a double submit:
a random value in a SameSite=Strict cookie and the same in the form.
Every attempt is audited (ok, failed, locked); a wrong name and a wrong
password get the same answer.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from posgw.center.web import audit
from posgw.center.web.accounts import LoginOutcome, check_password, find_user
from posgw.center.web.console import Console
from posgw.center.web.guard import (
    LOGIN_COOKIE,
    PASSWORD_PATH,
    SESSION_COOKIE,
    PageCall,
    client_of,
    page,
    set_cookie,
)
from posgw.center.web.search import holds_card_number
from posgw.center.web.sessions import close_session, open_session, signed_in

#: Long enough to type a password, short enough that a stale form is refused.
LOGIN_FORM_TTL_S = 600


async def login_form(request: Request) -> Response:
    console: Console = request.app.state.console
    user = await run_in_threadpool(signed_in, console.engine,
                                   request.cookies.get(SESSION_COOKIE))
    if user is not None:
        return RedirectResponse("/search", status_code=303)
    return _form(request, "")


def _form(request: Request, message: str, status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    console: Console = request.app.state.console
    response = console.render(request, "login.html", None, status_code,
                              login_token=token, message=message)
    set_cookie(response, LOGIN_COOKIE, token, LOGIN_FORM_TTL_S)
    return response


async def login_submit(request: Request) -> Response:
    console: Console = request.app.state.console
    form = await request.form(max_files=0, max_fields=10)
    name, password, token = (str(form.get(key, "")) for key in ("name", "password",
                                                                  "login_token"))
    if holds_card_number({"name": name}):
        name = "(card number)"  # typed in the wrong box: never written to the audit
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(token, expected):
        return console.render(request, "forbidden.html", None, status_code=403)
    outcome = await run_in_threadpool(
        check_password, console.engine, name[:64], password[:1024],
        max_failures=console.config.web.max_failed_logins, lockout=console.lockout)
    await run_in_threadpool(audit.record, console.engine, name[:64], "login", outcome.value,
                            client=client_of(request))
    if outcome is LoginOutcome.LOCKED:
        return _form(request, "locked", status_code=401)
    if outcome is not LoginOutcome.OK:
        return _form(request, "failed", status_code=401)
    session_token = await run_in_threadpool(open_session, console.engine, name,
                                            console.session_ttl)
    account = await run_in_threadpool(find_user, console.engine, name)
    # A one-time password opens only the page that replaces it.
    first_page = PASSWORD_PATH if account is not None and account.must_change else "/search"
    response = RedirectResponse(first_page, status_code=303)
    set_cookie(response, SESSION_COOKIE, session_token, console.config.web.session_ttl_s)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@page("viewer")
def logout(call: PageCall) -> Response:
    close_session(call.console.engine, call.user.token_sha256)
    audit.record(call.console.engine, call.user.account.name, "logout", "ok",
                 client=client_of(call.request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                           samesite="strict")
    return response
