"""The account's own password: the page that replaces a one-time password
at the first sign-in (the guard sends such an account nowhere else), and
that any account may use later.

The current password proves who asks (a session left open on a shared
desk is not enough; a wrong one counts towards the lockout as at
sign-in); the change ends every other session of the account.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from posgw.center.web import audit
from posgw.center.web.accounts import MIN_PASSWORD_LENGTH, AccountError, change_password
from posgw.center.web.guard import PageCall, client_of, page
from posgw.center.web.sessions import close_other_sessions

#: What the form may say, by the AccountError's message (msgids: translated).
PROBLEMS = {
    "the current password is wrong": "The current password is wrong.",
    "the new password must differ from the current one":
        "The new password must differ from the current one.",
    "mismatch": "The two new passwords differ.",
    f"a password has at least {MIN_PASSWORD_LENGTH} characters": "The new password is too short.",
}
#: Cut before hashing: Argon2 takes any length, a request body should not.
MAX_PASSWORD_CHARS = 1024


@page("viewer")
def password_form(call: PageCall) -> Response:
    return _form(call, "")


@page("viewer")
def password_submit(call: PageCall) -> Response:
    current, new, repeated = (call.form.get(key, "")[:MAX_PASSWORD_CHARS]
                              for key in ("current", "new", "repeat"))
    name = call.user.account.name
    try:
        if new != repeated:
            raise AccountError("mismatch")
        change_password(call.console.engine, name, current, new,
                        max_failures=call.console.config.web.max_failed_logins,
                        lockout=call.console.lockout)
    except AccountError as problem:
        audit.record(call.console.engine, name, "change password", "refused",
                     object=name, client=client_of(call.request))
        return _form(call, PROBLEMS[str(problem)], status_code=400)
    close_other_sessions(call.console.engine, name, call.user.token_sha256)
    audit.record(call.console.engine, name, "change password", "ok", object=name,
                 client=client_of(call.request))
    return RedirectResponse("/search", status_code=303)


def _form(call: PageCall, problem: str, status_code: int = 200) -> Response:
    return call.console.render(call.request, "password.html", call.user,
                               status_code=status_code, problem=problem,
                               min_length=MIN_PASSWORD_LENGTH)
