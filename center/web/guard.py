"""What stands in front of every page: the session, the role, the CSRF
token and the security headers.

Every route is made with `page(role)` (or is in PUBLIC_PATHS): without a
live session it answers only a redirect to /login; an account that still
holds a one-time password is sent to choose its own; with a role below the
route's it answers 403; a POST without the session's CSRF token answers 403
before the handler runs. tests/web/test_routes.py walks every route of
`app.routes()` to check this, so a route added later is covered too.
Forms carry text only, except on routes made with `page(role, upload=True)`
(the cases desk's evidence): one file, the body counted as it arrives and
refused (413) past `[cases] max_evidence_bytes`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from posgw.center.web import audit
from posgw.center.web.console import CSRF_FIELD, Console
from posgw.center.web.models import ROLES, role_allows
from posgw.center.web.sessions import SignedIn, signed_in

SESSION_COOKIE = "posgw_session"
LOGIN_COOKIE = "posgw_login"  # the login form's own CSRF token (no session yet)
#: Served to anyone: the login page and the stylesheet it needs.
PUBLIC_PATHS = ("/login", "/static")
#: Where an account signed in with a one-time password chooses its own; with
#: signing out, the only pages it reaches until it has.
PASSWORD_PATH = "/account/password"
_OPEN_BEFORE_CHANGE = (PASSWORD_PATH, "/logout")
#: Script only from our own files (static/cases.js, never needed); no inline
#: script or style; no framing; forms
#: post only here.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # Pages hold customers' payments: no copy in a shared browser's cache.
    (b"cache-control", b"no-store"),
)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file posted to an upload route (`page(role, upload=True)`), read whole:
    its size is bounded by `[cases] max_evidence_bytes`."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class PageCall:
    """What a page handler gets: the request, who is asking, the form (POST)
    and, on an upload route, its one file."""

    request: Request
    console: Console
    user: SignedIn
    form: Mapping[str, str]
    files: Mapping[str, Upload] = field(default_factory=dict)


class TooLarge(Exception):
    """A request body past its route's bound: refused before it is read further."""


#: Room for the multipart framing and the form's text fields around a file.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


Handler = Callable[[PageCall], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def page(role: str, *, upload: bool = False) -> Callable[[Handler], Endpoint]:
    """Make `handler` (synchronous: it reads the database) a route that
    needs a session with at least `role`; POSTs need the CSRF token. With
    `upload`, a POST may carry exactly one file (multipart), its body bounded
    by `[cases] max_evidence_bytes`; the CSRF token is checked before the
    file is given to anything."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role}")

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            console: Console = request.app.state.console
            user = await run_in_threadpool(
                signed_in, console.engine, request.cookies.get(SESSION_COOKIE))
            if user is None:
                return RedirectResponse("/login", status_code=303)
            if user.account.must_change and request.url.path not in _OPEN_BEFORE_CHANGE:
                return RedirectResponse(PASSWORD_PATH, status_code=303)
            if upload and not role_allows(user.account.role, role):
                # An upload's body is not even read for a role that may not post it.
                return await run_in_threadpool(_refused, console, request, user, "role")
            try:
                form, files = await _posted(request, console, upload=upload)
            except TooLarge:
                return await run_in_threadpool(_too_large, console, request, user)
            if request.method == "POST" and not hmac.compare_digest(
                    form.get(CSRF_FIELD, ""), user.csrf_token):
                return await run_in_threadpool(_refused, console, request, user, "csrf")
            if not role_allows(user.account.role, role):
                return await run_in_threadpool(_refused, console, request, user, "role")
            call = PageCall(request, console, user, form, files)
            return await run_in_threadpool(handler, call)

        endpoint.required_role = role  # type: ignore[attr-defined]
        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


async def _posted(request: Request, console: Console, *, upload: bool
                  ) -> tuple[dict[str, str], dict[str, Upload]]:
    """A POST's text fields, and on an upload route its file."""
    if request.method != "POST":
        return {}, {}
    if upload:
        return await _with_file(
            request, console.config.cases.max_evidence_bytes + UPLOAD_OVERHEAD_BYTES)
    return await _text_fields(request), {}


async def _text_fields(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=50)
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def _with_file(request: Request, max_body: int) -> tuple[dict[str, str],
                                                                 dict[str, Upload]]:
    """The text fields and the one file of a multipart POST, reading at most
    `max_body` bytes of body (a declared length past it is refused unread)."""
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > max_body):
        raise TooLarge
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > max_body:
            raise TooLarge
        return message

    form = await Request(request.scope, bounded).form(max_files=1, max_fields=10)
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    files: dict[str, Upload] = {}
    for key, value in form.items():
        if isinstance(value, UploadFile):
            files[key] = Upload(value.filename or "", value.content_type or "",
                                await value.read())
            await value.close()
    return fields, files


def _too_large(console: Console, request: Request, user: SignedIn) -> Response:
    audit.record(console.engine, user.account.name, "upload", "too large",
                 object=request.url.path, client=client_of(request))
    return console.render(request, "too_large.html", user, status_code=413,
                          limit=console.config.cases.max_evidence_bytes)


def _refused(console: Console, request: Request, user: SignedIn, why: str) -> Response:
    audit.record(console.engine, user.account.name, "denied", f"refused ({why})",
                 object=request.url.path, client=client_of(request))
    return console.render(request, "forbidden.html", user, status_code=403)


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly (no script reads it), Secure (never over plain HTTP, except
    to loopback), SameSite=Strict (never sent by another site's form)."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, secure=True,
                        samesite="strict")


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, errors and redirects included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
