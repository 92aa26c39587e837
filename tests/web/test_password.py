"""A one-time password opens only the page that replaces it; the account's
own change needs the current password and ends its other sessions."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from starlette.testclient import TestClient

from posgw.center.web.accounts import add_user, find_user
from posgw.center.web.audit import latest
from posgw.center.web.models import create_console_tables
from tests.web.conftest import PASSWORD, ConsoleSite, csrf_of, login
from tests.web.test_routes import guarded_requests

ONE_TIME = "handed-over-once"
NEW = "my own long password"


def newcomer(site: ConsoleSite) -> TestClient:
    """Signed in as `newbie`, an admin added with a one-time password."""
    add_user(site.store.engine, "newbie", "admin", ONE_TIME, must_change=True)
    client = site.client()
    assert login(client, "newbie", ONE_TIME) == 303
    return client


def change(client: TestClient, current: str, new: str, repeat: str | None = None) -> int:
    token = csrf_of(client.get("/account/password").text)
    return client.post("/account/password", data={
        "csrf_token": token, "current": current, "new": new,
        "repeat": new if repeat is None else repeat}).status_code


def test_a_one_time_password_signs_in_to_the_change_page_only(site: ConsoleSite) -> None:
    add_user(site.store.engine, "newbie", "admin", ONE_TIME, must_change=True)
    client = site.client()
    page = client.get("/login")
    token = page.text.split('name="login_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/login", data={"name": "newbie", "password": ONE_TIME,
                                         "login_token": token})
    assert answer.headers["location"] == "/account/password"
    for method, path in guarded_requests():
        if path == "/account/password" or path == "/logout":
            continue
        answer = client.request(method, path)
        assert (answer.status_code, answer.headers["location"]) == (
            303, "/account/password"), (method, path)
    page = client.get("/account/password")
    assert page.status_code == 200 and "one-time password" in page.text


def test_choosing_a_new_password_opens_the_console(site: ConsoleSite) -> None:
    client = newcomer(site)
    assert change(client, ONE_TIME, NEW) == 303
    assert client.get("/search").status_code == 200
    account = find_user(site.store.engine, "newbie")
    assert account is not None and not account.must_change
    assert login(site.client(), "newbie", ONE_TIME) == 401
    assert login(site.client(), "newbie", NEW) == 303
    changes = [(e.action, e.outcome) for e in latest(site.store.engine)
               if e.action == "change password"]
    assert changes == [("change password", "ok")]


def test_a_bad_change_is_refused_with_its_reason(site: ConsoleSite) -> None:
    client = newcomer(site)
    assert change(client, "not the one-time one", NEW) == 400
    assert change(client, ONE_TIME, NEW, repeat=NEW + "x") == 400
    assert change(client, ONE_TIME, "short") == 400
    assert change(client, ONE_TIME, ONE_TIME) == 400
    token = csrf_of(client.get("/account/password").text)
    answer = client.post("/account/password", data={
        "csrf_token": token, "current": ONE_TIME, "new": NEW, "repeat": "other password"})
    assert "The two new passwords differ." in answer.text and NEW not in answer.text
    assert client.get("/search").headers["location"] == "/account/password"


def test_a_change_ends_the_accounts_other_sessions(
        site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    elsewhere, here = signed_in("viewer"), signed_in("viewer")
    assert change(here, PASSWORD, NEW) == 303
    assert here.get("/search").status_code == 200
    assert elsewhere.get("/search").headers["location"] == "/login"


def test_a_database_made_before_one_time_passwords_gets_the_column(
        site: ConsoleSite) -> None:
    with site.store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE center_users DROP COLUMN must_change"))
    create_console_tables(site.store.engine)
    account = find_user(site.store.engine, "viewer")
    assert account is not None and not account.must_change
    assert login(site.client(), "viewer") == 303


def test_guessing_the_current_password_locks_the_account_as_at_sign_in(
        site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("viewer")
    assert [change(client, f"guess {n}", NEW) for n in range(5)] == [400] * 5
    assert change(client, PASSWORD, NEW) == 400  # locked: the right one does not help
    assert login(site.client(), "viewer") == 401
