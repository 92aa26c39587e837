"""Every route of the console, found by walking `app.routes()` (so a route
added later is covered with no edit here): without a session each answers
only a redirect to /login, and each that is not public needs a role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from starlette.convertors import (
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    UUIDConvertor,
)
from starlette.routing import BaseRoute, Mount, Route

from posgw.center.web.app import routes
from posgw.center.web.guard import PUBLIC_PATHS
from posgw.center.web.models import ROLES
from tests.web.conftest import ConsoleSite

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
    requests = []
    for path_format, route in walk(routes()):
        if isinstance(route, Route) and not is_public(path_format):
            path = filled(path_format, route)
            requests += [(method, path) for method in sorted(route.methods or ())]
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
