"""The console's guard, over HTTP against the real app and its database:
sessions, roles, CSRF, lockout, headers, the card-number guard (every
route without a session: tests/web/test_routes.py)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import text, update
from sqlmodel import Session, select
from starlette.testclient import TestClient

from posgw.center.web.audit import latest
from posgw.center.web.guard import CONTENT_SECURITY_POLICY
from posgw.center.web.models import AuditEntry, ConsoleSession
from tests.web.conftest import PASSWORD, ConsoleSite, csrf_of, login

ADMIN_ROUTES = ("/admin/users", "/admin/audit", "/admin/audit.csv")
CARD_NUMBER = "4761 7300 0000 0010"
DIGIT_RUN = re.compile(r"\d{13,19}")


def test_a_wrong_password_is_refused_then_the_right_one_signs_in(site: ConsoleSite) -> None:
    client = site.client()
    assert login(client, "viewer", "not the password") == 401
    assert client.get("/search").status_code == 303
    assert login(client, "viewer") == 303
    assert client.get("/search").status_code == 200
    outcomes = [(entry.actor, entry.action, entry.outcome) for entry in latest(site.store.engine)]
    assert outcomes == [("viewer", "login", "ok"), ("viewer", "login", "failed")]


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(
        site: ConsoleSite) -> None:
    client = site.client()
    statuses = [login(client, "risk", f"wrong {n}") for n in range(5)]
    assert statuses == [401] * 5
    assert login(client, "risk") == 401  # locked: the right password does not help
    outcomes = [entry.outcome for entry in reversed(latest(site.store.engine))]
    assert outcomes == ["failed"] * 4 + ["locked", "locked"]


def test_login_without_its_form_token_is_refused(site: ConsoleSite) -> None:
    client = site.client()
    answer = client.post("/login", data={"name": "admin", "password": PASSWORD})
    assert answer.status_code == 403
    assert "posgw_session" not in client.cookies


def test_a_viewer_gets_403_from_every_admin_route(
        signed_in: Callable[[str], TestClient]) -> None:
    for role, expected in (("viewer", 403), ("risk", 403), ("admin", 200)):
        client = signed_in(role)
        for path in ADMIN_ROUTES:
            assert client.get(path).status_code == expected, (role, path)


def test_a_post_without_its_csrf_token_is_refused(
        signed_in: Callable[[str], TestClient], site: ConsoleSite) -> None:
    client = signed_in("admin")
    for path in ("/search", "/logout", "/account/language"):
        assert client.post(path, data={"kind": "rrn", "rrn": "000000000001"}
                           ).status_code == 403, path
        assert client.post(path, data={"csrf_token": "forged", "kind": "rrn"}
                           ).status_code == 403, path
    assert client.get("/search").status_code == 200  # still signed in: logout was refused
    denied = [entry for entry in latest(site.store.engine) if entry.action == "denied"]
    assert len(denied) == 6 and {entry.outcome for entry in denied} == {"refused (csrf)"}


def test_every_answer_carries_the_security_headers(
        signed_in: Callable[[str], TestClient], site: ConsoleSite) -> None:
    client = signed_in("viewer")
    for answer in (site.client().get("/login"), site.client().get("/search"),
                   client.get("/search"), client.get("/admin/audit"),
                   client.get("/static/console.css")):
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_session_cookie_is_httponly_secure_and_samesite_strict(site: ConsoleSite) -> None:
    client = site.client()
    page = client.get("/login")
    token = page.text.split('name="login_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/login", data={"name": "viewer", "password": PASSWORD,
                                         "login_token": token})
    cookie = next(value for value in answer.headers.get_list("set-cookie")
                  if value.startswith("posgw_session="))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes


def test_an_expired_session_sends_back_to_login(
        signed_in: Callable[[str], TestClient], site: ConsoleSite) -> None:
    client = signed_in("viewer")
    with Session(site.store.engine) as session:
        session.execute(update(ConsoleSession).values(expires_at=text("'2000-01-01'")))
        session.commit()
    assert client.get("/search").headers["location"] == "/login"


def test_logout_ends_the_session_at_the_server(
        signed_in: Callable[[str], TestClient], site: ConsoleSite) -> None:
    client = signed_in("viewer")
    stolen = client.cookies["posgw_session"]
    token = csrf_of(client.get("/search").text)
    assert client.post("/logout", data={"csrf_token": token}).headers["location"] == "/login"
    replay = site.client()
    replay.cookies.set("posgw_session", stolen)
    assert replay.get("/search").status_code == 303
    with Session(site.store.engine) as session:
        assert not list(session.scalars(select(ConsoleSession)))


def test_a_full_card_number_is_refused_not_searched_stored_or_echoed(
        signed_in: Callable[[str], TestClient], site: ConsoleSite) -> None:
    client = signed_in("viewer")
    token = csrf_of(client.get("/search").text)
    for field in ("last4", "rrn", "terminal", "merchant", "amount"):
        for typed in (CARD_NUMBER, CARD_NUMBER.replace(" ", ""), CARD_NUMBER.replace(" ", "-")):
            answer = client.post("/search", data={"csrf_token": token, "kind": "card",
                                                  field: typed})
            assert answer.status_code == 400
            assert "full card number" in answer.text
            assert typed not in answer.text and not DIGIT_RUN.search(answer.text)
    with Session(site.store.engine) as session:
        rows = [str(row) for row in session.execute(select(AuditEntry))]
    assert rows and not any(DIGIT_RUN.search(row.replace(" ", "").replace("-", ""))
                            for row in rows)
    database = site.config_path.parent / "center.db"
    assert b"47617300" not in database.read_bytes()


def test_search_finds_by_card_rrn_terminal_and_place(
        signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("viewer")
    token = csrf_of(client.get("/search").text)
    from tests.center.events import DAY_TEXT

    forms = {
        "card": {"last4": "0010", "amount": "12.40", "currency": "EUR",
                 "amount_tolerance": "0.10", "day": DAY_TEXT, "day_tolerance": "1"},
        "rrn": {"rrn": "000000000002"},
        "terminal": {"terminal": "T0001", "stan": "000003"},
        "place": {"branch": "B001", "day": DAY_TEXT},
    }
    expected = {"card": 4, "rrn": 1, "terminal": 1, "place": 4}
    for kind, form in forms.items():
        answer = client.post("/search", data={"csrf_token": token, "kind": kind, **form})
        assert answer.status_code == 200, kind
        assert answer.text.count('href="/tx/') == expected[kind], kind
        assert "476173******0010" in answer.text


def test_the_audit_csv_cannot_carry_a_formula(
        signed_in: Callable[[str], TestClient], site: ConsoleSite) -> None:
    login(site.client(), "=HYPERLINK(\"http://evil\")", "x" * 12)
    csv_text = signed_in("admin").get("/admin/audit.csv").text
    assert csv_text.startswith("at,actor,action,object,outcome,client")
    assert ",'=HYPERLINK" in csv_text.replace('"', "")


def test_the_transaction_page_links_the_reversal_both_ways(
        signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("viewer")
    sale = client.get("/tx/ev-B001-T0001-1")
    assert 'href="/tx/ev-B001-T0001-1-rev"' in sale.text
    assert "It was cancelled on" in sale.text
    reversal = client.get("/tx/ev-B001-T0001-1-rev")
    assert 'href="/tx/ev-B001-T0001-1"' in reversal.text
    untouched = client.get("/tx/ev-B001-T0001-2")
    assert "/tx/ev-B001-T0001-1" not in untouched.text and "Settled" in untouched.text
    assert client.get("/tx/no-such-event").status_code == 404


def test_a_merchant_id_of_a_letter_and_14_digits_is_searched_not_refused(
        signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("viewer")
    token = csrf_of(client.get("/search").text)
    answer = client.post("/search", data={"csrf_token": token, "kind": "place",
                                          "merchant": "M00000000000001"})
    assert answer.status_code == 200 and "full card number" not in answer.text
    for typed in ("4761730000000010", "M 4761 7300 0000 0010"):
        refused = client.post("/search", data={"csrf_token": token, "kind": "place",
                                               "merchant": typed})
        assert refused.status_code == 400 and "full card number" in refused.text, typed
