"""The console in a real browser: Debian's chromium driven by Playwright,
against a real `posgw center web` process, over a center database that a
real gateway filled in this test (terminal -> gateway -> mosquitto -> center).

It signs in (a wrong password first), finds the sale through the search,
opens its page and follows the link to its void; a viewer gets 403 from an
admin page; a POST without its CSRF token is refused; a browser without a
session is sent to /login; no page, log or audit row holds a card number
(tests/web/card_numbers.py).
Each page is photographed; with POSGW_SCREENSHOTS=docs/console the pictures
land where docs/console.md shows them (a test run leaves the tree as it was):

    POSGW_SCREENSHOTS=docs/console .venv/bin/pytest -n0 tests/web/test_browser.py
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from posgw.drivers.tcp_link import connect_tcp
from posgw.sandbox.ports import free_port
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.e2e.harness import (
    TCP_PROFILE,
    center_toml,
    gateway_and_center,
    gateway_config,
    ledger_rows,
    until_center_has,
    wait_for,
)
from tests.e2e.test_cases import freeze_one
from tests.posgw_script import POSGW, run_posgw
from tests.web.browser import (
    BROWSER_MARKS,
    PANS,
    PASSWORD,
    chromium,
    follow,
    port_open,
    shot,
    sign_in,
)
from tests.web.card_numbers import assert_no_card_number

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = BROWSER_MARKS


@dataclass
class Sale:
    rrn: str
    stan: str
    void_stan: str


@dataclass
class Console:
    url: str
    config: Path
    log: Path
    sale: Sale
    one_time_password: str  # of "dung", an admin added with `users add --one-time`
    seen: list[bytes] = field(default_factory=list)


async def sale_and_void(port: int) -> Sale:
    """A purchase and its void, as a cashier does it, on terminal W0000001."""
    transport = await connect_tcp("127.0.0.1", port)
    async with TerminalSimulator(TCP_PROFILE, transport, "W0000001", "M00000000000001",
                                 demo_cards(), response_timeout_s=5.0) as terminal:
        sale = await terminal.purchase(demo.MASTERCARD_LIMITED, 125_00)
        assert sale.approved and sale.rrn
        void = await terminal.void(demo.MASTERCARD_LIMITED, 125_00, sale.rrn)
        assert void.approved
    return Sale(sale.rrn, sale.stan, void.stan)


async def fill_center(workdir: Path) -> Sale:
    port = shared_broker_port()
    async with gateway_and_center(gateway_config(workdir, port), workdir, port) as (
            gateway, center):
        sale = await sale_and_void(gateway.listener_ports[0])
        await freeze_one(gateway.listener_ports[0], "F0000001", demo.VISA_OK)
        # The sale, its void, three swipes (the third frozen): all at the center.
        ledger = {row.event_id for row in ledger_rows(gateway.config.database)}
        assert len(ledger) >= 5
        assert set(await until_center_has(center, ledger)) >= ledger
    return sale


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    workdir = tmp_path_factory.mktemp("console")
    sale = asyncio.run(fill_center(workdir))
    config = center_toml(workdir, shared_broker_port())
    password = workdir / "password"
    password.write_text(PASSWORD + "\n")
    for name, role in (("ana", "admin"), ("binh", "viewer"), ("chen", "risk")):
        added = run_posgw("center", "-c", str(config), "users", "add", name, "--role", role,
                          "--password-file", str(password))
        assert added.returncode == 0, added.stderr
    added = run_posgw("center", "-c", str(config), "users", "add", "dung", "--role", "admin",
                      "--one-time")
    assert added.returncode == 0, added.stderr
    one_time = added.stdout.split("one-time password: ", 1)[1].split()[0]
    port, log = free_port(), workdir / "web.log"
    with log.open("wb") as output:
        web = subprocess.Popen([POSGW, "center", "-c", str(config), "web", "--listen",
                                f"127.0.0.1:{port}"], stdout=output, stderr=output)
        try:
            wait_for(lambda: port_open(port) or web.poll() is not None, "the console to listen")
            assert web.poll() is None, log.read_text()
            yield Console(f"http://127.0.0.1:{port}", config, log, sale, one_time)
        finally:
            web.terminate()
            web.wait(timeout=30)


def search_by(page: Any, heading: str, fields: dict[str, str]) -> None:
    form = page.locator("form.card", has=page.get_by_role("heading", name=heading))
    for name, value in fields.items():
        form.locator(f"input[name={name}]").fill(value)
    follow(page, form.locator("button[type=submit]"))


def test_a_day_at_the_console_in_chromium(console: Console) -> None:
    with chromium(sync_api) as browser:
        staff_story(browser, console)
        one_time_password_is_replaced_first(browser, console)
        viewer_is_kept_out_of_admin_pages(browser, console)
        post_without_csrf_is_refused(browser, console)
        no_session_means_login(browser, console)
    no_card_number_anywhere(console)


def staff_story(browser: Any, console: Console) -> None:
    """Wrong password refused, right one in; the sale found; its void linked."""
    page = browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 800})
    sign_in(page, console.url, "ana", "not my password")
    assert "Wrong name or password." in page.content()
    shot(page, "login-refused", console.seen)
    sign_in(page, console.url, "ana")
    assert page.url.endswith("/search")
    search_by(page, "By RRN", {"rrn": console.sale.rrn})
    shot(page, "search-results", console.seen)
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 2  # the sale and its void share the terminal's RRN
    follow(page, page.locator("table.results tbody tr", has_text="settled").get_by_role(
        "link", name="Open"))
    assert "/tx/" in page.url and "Tell the customer:" in page.content()
    linked = page.locator("table.linked tbody tr")
    assert linked.count() == 1 and "voided" in linked.inner_text()
    assert "cancelled" in page.locator("p.answer").inner_text()
    shot(page, "transaction", console.seen)
    follow(page, linked.get_by_role("link", name="Open"))
    assert "voided" in page.locator("h1").inner_text()
    page.goto(console.url + "/search")
    search_by(page, "By merchant or branch", {"branch": "E2E"})
    frozen = page.locator("table.results tbody tr", has_text="frozen")
    assert frozen.count() == 1
    follow(page, frozen.get_by_role("link", name="Open"))
    assert "held by the risk rules" in page.locator("p.answer").inner_text()
    shot(page, "transaction-frozen", console.seen)
    page.goto(console.url + "/admin/audit")
    assert "login" in page.content() and "failed" in page.content()
    shot(page, "audit", console.seen)
    export = page.request.get(console.url + "/admin/audit.csv")
    assert export.status == 200 and export.body().startswith(b"at,actor,action")
    console.seen.append(export.body())  # scanned with the pages
    page.goto(console.url + "/admin/users")
    shot(page, "users", console.seen)
    page.close()
    vietnamese = browser.new_page(locale="vi-VN", viewport={"width": 1280, "height": 800})
    sign_in(vietnamese, console.url, "chen")
    search_by(vietnamese, "Theo RRN", {"rrn": console.sale.rrn})
    assert "Giao dịch đã đến chưa?" in vietnamese.content()
    shot(vietnamese, "search-vi", console.seen)
    vietnamese.close()


def one_time_password_is_replaced_first(browser: Any, console: Console) -> None:
    page = browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 800})
    sign_in(page, console.url, "dung", console.one_time_password)
    assert page.url.endswith("/account/password")
    page.goto(console.url + "/admin/audit")
    assert page.url.endswith("/account/password")  # nowhere else until it is replaced
    shot(page, "password", console.seen)
    page.fill("input[name=current]", console.one_time_password)
    page.fill("input[name=new]", PASSWORD)
    page.fill("input[name=repeat]", PASSWORD)
    follow(page, page.locator("form.card button[type=submit]"))
    assert page.url.endswith("/search")
    page.close()


def viewer_is_kept_out_of_admin_pages(browser: Any, console: Console) -> None:
    page = browser.new_page(locale="zh-CN")
    sign_in(page, console.url, "binh")
    for path in ("/admin/audit", "/admin/users", "/admin/audit.csv"):
        answer = page.request.get(console.url + path)
        assert answer.status == 403, path
    page.goto(console.url + "/admin/audit")
    shot(page, "forbidden-zh", console.seen)
    page.close()


def post_without_csrf_is_refused(browser: Any, console: Console) -> None:
    """The session cookie alone (what a forged cross-site form would carry) is not enough."""
    page = browser.new_page()
    sign_in(page, console.url, "binh")
    answer = page.request.post(console.url + "/search",
                               form={"kind": "rrn", "rrn": console.sale.rrn})
    assert answer.status == 403
    page.close()


def no_session_means_login(browser: Any, console: Console) -> None:
    context = browser.new_context()
    for path in ("/", "/search", "/admin/audit", "/admin/users", "/admin/audit.csv",
                 "/tx/anything"):
        answer = context.request.get(console.url + path, max_redirects=0)
        assert (answer.status, answer.headers["location"]) == (303, "/login"), path
    for path in ("/search", "/logout", "/account/language"):
        answer = context.request.post(console.url + path, max_redirects=0)
        assert (answer.status, answer.headers["location"]) == (303, "/login"), path
    page = context.new_page()
    page.goto(console.url + "/search")
    assert page.url.endswith("/login")
    shot(page, "login", console.seen)
    context.close()


def no_card_number_anywhere(console: Console) -> None:
    """Every page seen and the audit CSV, the console's log, `center query`:
    no PAN, and no digit run as long as one; the database file: no known PAN."""
    audit = run_posgw("center", "-c", str(console.config), "query", "--rrn", console.sale.rrn)
    assert len(console.seen) >= 8
    pages = {f"page {n}": html for n, html in enumerate(console.seen)}
    assert_no_card_number({**pages, "console log": console.log.read_bytes(),
                           "center query": audit.stdout.encode()}, PANS,
                          binary={"center.db": console.config.with_name("center.db").read_bytes()})
