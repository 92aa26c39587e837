"""The merchant register and a merchant's page in a real browser: Debian's
chromium driven by Playwright, against a real `posgw center web` process
over a center database filled through the settlement functions (no gateway
needed: the register, a day's sales and the findings are the center's own).

A viewer signs in, reads the register, follows a merchant's link and sees
its plans, days owed and complaint cases; no page trips the Content
Security Policy or shows a card number. Screenshots as in
tests/web/test_browser.py:

    POSGW_SCREENSHOTS=docs/console .venv/bin/pytest -n0 tests/web/test_browser_merchants.py
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from posgw.center.db import CenterStore
from posgw.sandbox.ports import free_port
from tests.e2e.harness import wait_for, write_toml
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
from tests.web.test_merchants import fill

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = BROWSER_MARKS


@pytest.fixture
def console_url(tmp_path: Path) -> Iterator[str]:
    """`posgw center web` over a center database holding two merchants."""
    database = f"sqlite:///{tmp_path / 'center.db'}"
    config = write_toml(tmp_path / "center.toml", {"center": {"database": database}})
    store = CenterStore(database)
    try:
        fill(store)
    finally:
        store.close()
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    added = run_posgw("center", "-c", str(config), "users", "add", "binh", "--role", "viewer",
                      "--password-file", str(password))
    assert added.returncode == 0, added.stderr
    port, log = free_port(), tmp_path / "web.log"
    with log.open("wb") as output:
        web = subprocess.Popen([POSGW, "center", "-c", str(config), "web", "--listen",
                                f"127.0.0.1:{port}"], stdout=output, stderr=output)
        try:
            wait_for(lambda: port_open(port) or web.poll() is not None, "the console to listen")
            assert web.poll() is None, log.read_text()
            yield f"http://127.0.0.1:{port}"
        finally:
            web.terminate()
            web.wait(timeout=30)
    assert_no_card_number({"web.log": log.read_bytes()}, PANS)


def test_the_merchant_pages_in_chromium(console_url: str) -> None:
    seen: list[bytes] = []
    refused: list[str] = []
    with chromium(sync_api) as browser:
        page = browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 800})
        page.on("console", lambda message: refused.append(message.text)
                if "Content Security Policy" in message.text else None)
        sign_in(page, console_url, "binh")
        follow(page, page.get_by_role("link", name="Merchants"))
        rows = page.locator("table.merchants tbody tr")
        assert rows.count() == 2
        assert "0.55 % of the amount, no fixed fee" in rows.nth(0).inner_text()
        shot(page, "merchants", seen)
        follow(page, rows.nth(0).get_by_role("link", name="Open"))
        assert page.url.endswith("/merchants/M0001")
        assert page.locator("table.settlement-cases tbody tr").count() == 2
        assert "₫1,193,125" in page.locator("table.owed").inner_text()
        shot(page, "merchant", seen)
    assert not refused, refused
    assert_no_card_number({f"page {n}": html for n, html in enumerate(seen)}, PANS)
