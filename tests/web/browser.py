"""What the console's browser tests share: Debian's chromium driven by Playwright.

Pages are photographed; with POSGW_SCREENSHOTS=docs/console the pictures
land where docs/console.md shows them (a test run leaves the tree as it was).
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from posgw.simulator import cards as demo

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("POSGW_SCREENSHOTS")
             or Path(tempfile.gettempdir()) / "posgw-console-screenshots").resolve()
PASSWORD = "a long console password"
#: The card numbers the tests' terminals use: none may show in clear anywhere.
PANS = {demo.VISA_OK, demo.UNIONPAY_OK, demo.MASTERCARD_LIMITED}
#: A browser test's `pytestmark`: end-to-end, skipped (with why) without chromium.
BROWSER_MARKS = [pytest.mark.e2e,
                 pytest.mark.skipif(not CHROMIUM.is_file(),
                                    reason="no /usr/bin/chromium (apt-get install chromium)")]


@contextmanager
def chromium(sync_api: Any) -> Iterator[Any]:
    """The system chromium, launched by Playwright's sync API; closed after."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


def shot(page: Any, name: str, seen: list[bytes]) -> None:
    """Keep the page's HTML for the card-number scan, and its picture for the docs."""
    seen.append(page.content().encode())
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    follow(page, page.locator("button[type=submit]"))


def follow(page: Any, target: Any) -> None:
    """Click what loads a new page and wait until it has loaded: a search
    posts back to /search, so a check made right after the click could read
    the page it came from."""
    with page.expect_navigation():
        target.click()


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
