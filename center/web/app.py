"""The console application: `create_app(config)` gives the ASGI app that
`posgw center web` serves with uvicorn.

It keeps nothing in memory that matters: accounts, sessions and the audit
trail are tables in the center database, so several processes can serve
one center behind a load balancer.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.center.web import i18n, login, pages
from posgw.center.web.guard import CSRF_FIELD, SecurityHeaders, role_allows
from posgw.center.web.models import create_console_tables
from posgw.center.web.sessions import SignedIn

HERE = Path(__file__).parent


class Console:
    """What every request shares: the database, the settings, the templates."""

    def __init__(self, config: CenterConfig, store: CenterStore) -> None:
        self.config = config
        self.store = store
        self.engine: Engine = store.engine
        self.session_ttl = timedelta(seconds=config.web.session_ttl_s)
        self.lockout = timedelta(seconds=config.web.lockout_s)
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(default=True),
                                     auto_reload=False)

    def language_for(self, request: Request, user: SignedIn | None) -> i18n.Language:
        return i18n.choose(user.account.language if user else "",
                           request.headers.get("accept-language", ""))

    def render(self, request: Request, template: str, user: SignedIn | None,
               status_code: int = 200, **context: Any) -> HTMLResponse:
        language = self.language_for(request, user)
        html = self.templates.get_template(template).render(
            _=language.gettext, lang=language, user=user, csrf_field=CSRF_FIELD,
            csrf_token=user.csrf_token if user else "", can=_can(user),
            languages=i18n.LANGUAGE_NAMES, **context)
        return HTMLResponse(html, status_code=status_code)


def _can(user: SignedIn | None) -> dict[str, bool]:
    """Which links to show; the routes check the role themselves."""
    role = user.account.role if user else ""
    return {"admin": bool(role) and role_allows(role, "admin")}


def routes() -> list[Route | Mount]:
    return [
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/", pages.home, methods=["GET"]),
        Route("/search", pages.search_form, methods=["GET"]),
        Route("/search", pages.search_submit, methods=["POST"]),
        Route("/tx/{event_id}", pages.transaction, methods=["GET"]),
        Route("/account/language", pages.account_language, methods=["POST"]),
        Route("/admin/users", pages.admin_users, methods=["GET"]),
        Route("/admin/audit", pages.admin_audit, methods=["GET"]),
        Route("/admin/audit.csv", pages.admin_audit_csv, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(config: CenterConfig, store: CenterStore | None = None) -> Starlette:
    """The console over `config`'s center database (its tables made if missing)."""
    store = store or CenterStore(config.database)
    create_console_tables(store.engine)
    app = Starlette(routes=routes(), middleware=[Middleware(SecurityHeaders)])
    app.state.console = Console(config, store)
    return app
