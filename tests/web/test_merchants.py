"""The merchant register and its settlement cases, read by the console:
merchants, plans, money owed and findings put in through the settlement
functions themselves, the pages fetched over HTTP by a signed-in viewer."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from starlette.testclient import TestClient

from posgw.center.db import CenterStore
from posgw.center.settlement.cases import Finding, open_cases, resolve_case
from posgw.center.settlement.fees import FeePlan
from posgw.center.settlement.merchants import add_merchant, set_plan
from tests.settlement.ledger import Event, insert_events
from tests.store.pg import scratch_database
from tests.web.card_numbers import assert_no_card_number
from tests.web.conftest import ConsoleSite, login, open_site

TODAY = datetime.now(UTC).date()


def fill(store: CenterStore) -> None:
    """M0001 (VND, branch B001) with two plans, a day of sales and two
    findings, one resolved; M0002 (EUR, branch B002) with one overdue case."""
    engine = store.engine
    with Session(engine) as session:
        add_merchant(session, "M0001", "Pho Hanoi", "B001", "VN12 ABCD 0123 4567 89", "VND",
                     FeePlan(date(2026, 1, 1), rate_ppm=6_000))
        set_plan(session, "M0001", FeePlan(TODAY - timedelta(days=30), rate_ppm=5_500))
        add_merchant(session, "M0002", "Café Lyon", "B002", "FR7630006000011234567890189",
                     "EUR", FeePlan(date(2026, 1, 1), rate_ppm=12_000, fixed_minor=25,
                                    cap_minor=500))
    insert_events(engine, [Event(1001, TODAY, 1_000_000), Event(1002, TODAY, 250_000),
                           Event(1003, TODAY, 50_000, status="refund")])
    long_ago = datetime.now(UTC) - timedelta(hours=30)
    with engine.begin() as conn:
        open_cases(conn, [
            Finding("charged_twice", "charged_twice|x1", "M0001", TODAY, 250_000, "VND",
                    {"rrn": "000000001002", "lines": 2}),
            Finding("fee_above_plan", "fee_above_plan|M0001", "M0001", TODAY, 1_500, "VND",
                    {"fee_minor": 9_000, "plan_fee_minor": 7_500})])
        open_cases(conn, [Finding("credit_short", "credit|M0002", "M0002", TODAY, 1_234, "EUR",
                                  {"expected_minor": 10_000, "credited_minor": 8_766})],
                   now=long_ago)
    with Session(engine) as session:
        resolve_case(session, "S-2", "Acquirer refunded the extra fee", "risk")


@pytest.fixture
def viewer(site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> TestClient:
    fill(site.store)
    return signed_in("viewer")


def test_the_register_shows_each_merchant_masked_with_its_plan_in_words(
        viewer: TestClient) -> None:
    page = viewer.get("/merchants")
    assert page.status_code == 200
    html = page.text
    assert "Pho Hanoi" in html and "Café Lyon" in html
    assert "VN12**********6789" in html
    assert "0123456789" not in html  # the account is stored masked, never whole
    assert "0.55 % of the amount, no fixed fee" in html  # the later plan is in force
    assert "1.2 % of the amount, fixed fee €0.25, cap €5.00" in html
    assert 'href="/merchants/M0001"' in html
    # M0001 has two cases, one resolved: one open; M0002's one is open
    assert open_counts(html) == {"M0001": "1", "M0002": "1"}


def open_counts(html: str) -> dict[str, str]:
    """The register's open case count per merchant id."""
    return dict(re.findall(r'<tr><td>(M\d+)</td>.*?<td class="num">(\d+)</td>', html,
                           flags=re.DOTALL))


def test_the_register_counts_open_cases_and_filters_by_branch(viewer: TestClient) -> None:
    html = viewer.get("/merchants", params={"branch": "B002"}).text
    assert "Café Lyon" in html and "Pho Hanoi" not in html
    assert open_counts(html) == {"M0002": "1"}
    assert viewer.get("/merchants", params={"branch": "B 1"}).status_code == 400
    assert "No merchant is registered" in viewer.get(
        "/merchants", params={"branch": "B999"}).text


def test_a_merchant_page_shows_plans_days_owed_and_cases(viewer: TestClient) -> None:
    page = viewer.get("/merchants/M0001")
    assert page.status_code == 200
    html = page.text
    assert "0.6 % of the amount" in html and "(in force)" in html
    # today: gross 1,250,000, refund 50,000, fee 0.55 % of 1,250,000 = 6,875
    assert "₫1,250,000" in html and "₫50,000" in html and "₫6,875" in html
    assert "₫1,193,125" in html  # net
    assert "S-1" in html and "Charged twice" in html and "rrn: 000000001002" in html
    assert re.search(r"<td>2[34] h \d+ min left</td>", html)  # S-1: inside its 24 hours
    assert "S-2" in html and "Resolved" in html and "Acquirer refunded the extra fee" in html
    # evidence amounts as money in the case's currency, not as minor units
    assert "fee: ₫9,000; plan_fee: ₫7,500" in html and "fee_minor" not in html


def test_an_overdue_case_says_so_in_euros(viewer: TestClient) -> None:
    html = viewer.get("/merchants/M0002").text
    assert "Bank credit short" in html and "€12.34" in html
    assert "expected: €100.00; credited: €87.66" in html
    assert "Overdue by 6 h" in html and 'class="overdue"' in html


def test_an_unknown_or_malformed_merchant_is_not_found(viewer: TestClient) -> None:
    assert viewer.get("/merchants/M9999").status_code == 404
    assert viewer.get("/merchants/M%3Cscript%3E").status_code == 404


def test_the_pages_are_translated(site: ConsoleSite, viewer: TestClient) -> None:
    html = viewer.get("/merchants/M0002", headers={"accept-language": "vi"}).text
    assert "của số tiền" in html and "Quá hạn" in html
    html = viewer.get("/merchants", headers={"accept-language": "zh-CN"}).text
    assert "商户" in html


def test_no_card_number_on_the_merchant_pages(viewer: TestClient) -> None:
    pages = {path: viewer.get(path).content
             for path in ("/merchants", "/merchants/M0001", "/merchants/M0002",
                          "/merchants?branch=B001")}
    assert_no_card_number(pages, known=["4761739001010010"])


def test_the_merchant_pages_work_over_postgresql(tmp_path: Path) -> None:
    with scratch_database() as url:
        site = open_site(tmp_path, url)
        try:
            fill(site.store)
            client = site.client()
            assert login(client, "viewer") == 303
            assert open_counts(client.get("/merchants").text) == {"M0001": "1", "M0002": "1"}
            html = client.get("/merchants/M0001").text
            assert "₫1,193,125" in html and "Charged twice" in html
            assert "Overdue by 6 h" in client.get("/merchants/M0002").text
        finally:
            site.store.close()
