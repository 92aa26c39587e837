"""Every route of the console, found by walking `app.routes()` (so a route
added later is covered with no edit here): without a session each answers
only a redirect to /login, each that is not public needs a role, and an
account below that role gets 403 from it (GET and POST alike)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from starlette.convertors import (
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    UUIDConvertor,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from posgw.center.web.app import routes
from posgw.center.web.guard import PUBLIC_PATHS
from posgw.center.web.models import ROLES, role_allows
from tests.web.conftest import ConsoleSite, csrf_of

#: A value for each kind of path parameter; a plain {name} takes any text.
_SAMPLES: dict[type[Convertor[Any]], Any] = {
    IntegerConvertor: 1, FloatConvertor: 1.5, PathConvertor: "a/b",
    UUIDConvertor: uuid.UUID(int=1)}
#: Routes under these paths are served to anyone: the login and the stylesheet.
PUBLIC_ROUTES = {"/login", "/static"}


def walk(found: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route | Mount]]:
    """(full path format, route) for every route, inside mounts too."""
    for route in found:
        if isinstance(route, Mount) and route.routes:
            yield from walk(list(route.routes), prefix + route.path)
        elif isinstance(route, Mount):  # an app of its own (the static files)
            yield prefix + route.path, route
        elif isinstance(route, Route):
            yield prefix + route.path_format, route


def filled(path_format: str, route: Route | Mount) -> str:
    values = {name: convertor.to_string(_SAMPLES.get(type(convertor), "any-id"))
              for name, convertor in route.param_convertors.items()}
    return path_format.format(**values)


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PATHS)


def guarded_requests() -> list[tuple[str, str]]:
    """(method, path with its parameters filled) of every route that is not public."""
    return [(method, path) for method, path, _ in guarded_with_roles()]


def guarded_with_roles() -> list[tuple[str, str, str]]:
    """(method, filled path, the role it needs) of every route that is not public."""
    requests = []
    for path_format, route in walk(routes()):
        if isinstance(route, Route) and not is_public(path_format):
            path, role = filled(path_format, route), getattr(route.endpoint, "required_role", "")
            requests += [(method, path, role) for method in sorted(route.methods or ())]
    return requests


def test_without_a_session_every_route_answers_a_redirect_to_login(site: ConsoleSite) -> None:
    requests = guarded_requests()
    assert len(requests) >= 10 and ("POST", "/search") in requests
    for cookie in (None, "forged-or-expired"):
        client = site.client()
        if cookie:
            client.cookies.set("posgw_session", cookie)
        for method, path in requests:
            answer = client.request(method, path)
            assert (answer.status_code, answer.headers.get("location")) == (
                303, "/login"), (method, path)
            assert "transaction" not in answer.text.lower()


def test_every_route_that_is_not_public_needs_a_role() -> None:
    checked = 0
    for path_format, route in walk(routes()):
        if is_public(path_format):
            continue
        assert isinstance(route, Route), f"{path_format}: a mount must be public or hold routes"
        assert getattr(route.endpoint, "required_role", None) in ROLES, path_format
        checked += 1
    assert checked >= 8


def test_only_the_login_and_the_stylesheet_are_public() -> None:
    public = {path for path, _ in walk(routes()) if is_public(path)}
    assert public == PUBLIC_ROUTES
    assert set(PUBLIC_PATHS) == PUBLIC_ROUTES


def test_every_route_refuses_an_account_below_its_role(
        signed_in: Callable[[str], TestClient]) -> None:
    """With the session's CSRF token, so only the role can be what refuses."""
    refused = 0
    for held in ROLES:
        client = signed_in(held)
        token = csrf_of(client.get("/search").text)
        for method, path, needed in guarded_with_roles():
            if role_allows(held, needed):
                continue
            answer = client.request(method, path, data={"csrf_token": token}
                                    if method == "POST" else None)
            assert answer.status_code == 403, (held, method, path)
            refused += 1
    assert refused >= 6  # the admin pages, for a viewer and for risk
