"""`Console`: what every request of the console shares (the database, the
settings, the templates), kept on the app's state by `create_app`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse

from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.center.web import i18n
from posgw.center.web.models import role_allows
from posgw.center.web.sessions import SignedIn

#: The form field every POST carries the session's CSRF token in.
CSRF_FIELD = "csrf_token"
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
