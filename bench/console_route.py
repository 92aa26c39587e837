"""`POST /search` through the whole console app, timed inside the server.

The app is the one `posgw center web` serves (`create_app`), driven in
process by Starlette's TestClient as a signed-in viewer. The time is taken
by a thin ASGI wrapper around the app, from the request's arrival to the
last byte of its answer: the session lookup, the CSRF check, the search,
the audit row and the page rendered, not the client's own work.
"""

from __future__ import annotations

import secrets
import time
import warnings
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from posgw.center.config import parse_center_config
from posgw.center.db import CenterStore
from posgw.center.web.accounts import add_user
from posgw.center.web.app import create_app

with warnings.catch_warnings():
    # Starlette would rather have httpx2, which this index does not carry;
    # httpx works the same here (tests/web/conftest.py says the same).
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class ServerTime:
    """Wraps an ASGI app; `last_ms` is how long its last request took inside."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        await self.app(scope, receive, send)
        self.last_ms = (time.perf_counter() - started) * 1000


class RouteSearch:
    """A signed-in viewer posting the search form to the real app."""

    def __init__(self, store: CenterStore) -> None:
        config = parse_center_config({"center": {"database": str(store.engine.url.render_as_string(
            hide_password=False))}}, "(bench)")
        self.timer = ServerTime(create_app(config, store))
        self.client = TestClient(self.timer, base_url="https://bench", follow_redirects=False)
        name, password = f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        add_user(store.engine, name, "viewer", password)
        token = _hidden(self.client.get("/login").text, "login_token")
        signed = self.client.post("/login", data={"name": name, "password": password,
                                                  "login_token": token})
        if signed.status_code != 303:
            raise SystemExit(f"bench: signing in to the console answered {signed.status_code}")
        self.csrf = _hidden(self.client.get("/search").text, "csrf_token")

    def search(self, fields: dict[str, str]) -> tuple[float, int]:
        """(ms inside the server, results on the page)."""
        answer = self.client.post("/search", data={**fields, "csrf_token": self.csrf})
        if answer.status_code != 200:
            raise SystemExit(f"bench: POST /search answered {answer.status_code} for {fields}")
        return self.timer.last_ms, answer.text.count('href="/tx/')

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RouteSearch:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _hidden(html: str, field: str) -> str:
    return html.split(f'name="{field}" value="', 1)[1].split('"', 1)[0]
