"""The operations pages in a real browser: Debian's chromium driven by
Playwright, against a real `posgw center web` process, while a real gateway
and a real center run in this test (terminal -> gateway -> mosquitto ->
center, and the console's command back to the gateway).

The fleet shows the gateway online and its terminals; an admin retires a
terminal through the confirmation step, the gateway drains it and reports
it decommissioned with its final statement, and the fleet shows it so; a
batch that did not reconcile is listed in words; the dashboard draws its
charts. No page trips the Content Security Policy. Screenshots as in
tests/web/test_browser.py:

    POSGW_SCREENSHOTS=docs/console .venv/bin/pytest -n0 tests/web/test_browser_operations.py
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from posgw.center.db import CenterStore
from posgw.sandbox.ports import free_port
from posgw.simulator import cards as demo
from tests.brokers import shared_broker_port
from tests.e2e.harness import (
    center_toml,
    gateway_and_center,
    gateway_config,
    ledger_rows,
)
from tests.e2e.harness import until_center_has as center_holds
from tests.e2e.test_cases import freeze_one
from tests.e2e.test_reconciliation_report import sell_then_settle_with_one_sale_too_many
from tests.posgw_script import POSGW, run_posgw
from tests.web.browser import BROWSER_MARKS, CHROMIUM, PANS, PASSWORD, SHOTS, port_open
from tests.web.card_numbers import assert_no_card_number

async_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
pytestmark = BROWSER_MARKS

RETIRED = "F0000001"  # the terminal the admin decommissions
DEADLINE_S = 60.0


async def until(predicate: Any, what: str) -> None:
    """Poll a database-reading predicate (in a thread) with a deadline."""
    async with asyncio.timeout(DEADLINE_S):
        while not await asyncio.to_thread(predicate):
            await asyncio.sleep(0.2)  # polling the center's database, with a deadline
    assert what


def states(store: CenterStore) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT terminal_id, state FROM center_terminal_status "
                                 "UNION ALL SELECT 'gateway', state FROM center_gateway_status"))
        return {str(name): str(state) for name, state in rows}


@asynccontextmanager
async def console_process(config: Path, workdir: Path) -> AsyncIterator[str]:
    password = workdir / "password"
    password.write_text(PASSWORD + "\n")
    for name, role in (("ana", "admin"), ("binh", "viewer")):
        added = await asyncio.to_thread(run_posgw, "center", "-c", str(config), "users", "add",
                                        name, "--role", role, "--password-file", str(password))
        assert added.returncode == 0, added.stderr
    port, log = free_port(), workdir / "web.log"
    with log.open("wb") as output:
        web = subprocess.Popen([POSGW, "center", "-c", str(config), "web", "--listen",
                                f"127.0.0.1:{port}"], stdout=output, stderr=output)
        try:
            await until(lambda: port_open(port) or web.poll() is not None, "the console")
            assert web.poll() is None, log.read_text()
            yield f"http://127.0.0.1:{port}"
        finally:
            web.terminate()
            await asyncio.to_thread(web.wait, 30)


#: Every page photographed, for the card-number scan at the end.
SEEN: list[bytes] = []


async def shot(page: Any, name: str) -> None:
    SEEN.append((await page.content()).encode())
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def follow(page: Any, target: Any) -> None:
    async with page.expect_navigation():
        await target.click()


async def sign_in(page: Any, url: str, name: str) -> None:
    await page.goto(url + "/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await follow(page, page.locator("button[type=submit]"))


async def test_operations_in_chromium(tmp_path: Path) -> None:
    port = shared_broker_port()
    config = gateway_config(tmp_path, port)
    async with gateway_and_center(config, tmp_path, port) as (gateway, center):
        listener = gateway.listener_ports[0]
        await freeze_one(listener, RETIRED, demo.VISA_OK)
        assert await sell_then_settle_with_one_sale_too_many(listener) == "95"
        ledger = {row.event_id for row in ledger_rows(config.database)}
        assert set(await center_holds(center, ledger)) >= ledger
        # The terminals hung up: the gateway reports them offline.
        await until(lambda: {RETIRED: "offline", "S0000001": "offline", "gateway": "online"}
                    .items() <= states(center).items(), "the statuses at the center")
        async with console_process(center_toml(tmp_path, port), tmp_path) as url:
            await in_the_browser(url, center)
    with center.engine.connect() as conn:  # the "draining" status too was taken
        assert conn.execute(text("SELECT count(*) FROM center_quarantine")).scalar() == 0
    assert len(SEEN) == 5
    assert_no_card_number({**{f"page {n}": html for n, html in enumerate(SEEN)},
                           "web.log": (tmp_path / "web.log").read_bytes()}, PANS)


async def in_the_browser(url: str, center: CenterStore) -> None:
    refused: list[str] = []
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)
            await sign_in(page, url, "ana")
            await the_fleet_shows_the_gateway_online(page, url)
            await an_admin_retires_a_terminal(page, url, center)
            await the_reconciliation_and_the_dashboard(page, url)
            await a_viewer_cannot_retire_a_terminal(browser, url)
        finally:
            await browser.close()
    assert refused == []


async def the_fleet_shows_the_gateway_online(page: Any, url: str) -> None:
    await page.goto(url + "/fleet")
    gateway = page.locator("table.gateways tbody tr", has_text="gw-e2e")
    assert "online" in await gateway.inner_text()
    terminal = page.locator("table.terminals tbody tr", has_text=RETIRED)
    assert "offline" in await terminal.inner_text()
    await shot(page, "fleet")


async def an_admin_retires_a_terminal(page: Any, url: str, center: CenterStore) -> None:
    await follow(page, page.locator("table.terminals tbody tr", has_text=RETIRED)
                 .get_by_role("link", name="Open"))
    await follow(page, page.get_by_role("link", name="Decommission…"))
    await page.fill("input[name=confirm_terminal]", RETIRED)
    await shot(page, "decommission-confirm")
    await follow(page, page.get_by_role("button", name="Decommission this terminal"))
    assert page.url.endswith(f"/fleet/E2E/{RETIRED}")
    # "done" when the gateway answered within the console's wait, else "sent":
    # either way the retirement below is the gateway obeying the signed command.
    request = await page.locator("table.requests tbody tr").first.inner_text()
    assert "ana" in request and ("done" in request or "sent" in request)
    await until(lambda: states(center).get(RETIRED) == "decommissioned", "the retirement")
    await page.goto(url + "/fleet")
    row = page.locator("table.terminals tbody tr", has_text=RETIRED)
    assert "decommissioned" in await row.inner_text()
    await page.goto(f"{url}/fleet/E2E/{RETIRED}")
    statement = page.locator("table.statement tbody")
    assert "settled" in await statement.inner_text() or "frozen" in await statement.inner_text()
    await shot(page, "terminal-retired")


async def the_reconciliation_and_the_dashboard(page: Any, url: str) -> None:
    await page.goto(url + "/reconciliation")
    differences = await page.locator("table.mismatches").inner_text()
    assert "sales counted by the terminal but missing at the center: 1" in differences
    await shot(page, "reconciliation")
    await page.goto(url + "/dashboard")
    assert await page.locator("svg.chart.hourly rect.bar.settled").count() >= 1
    assert await page.locator("svg.chart.freeze polyline").count() == 1
    fill = await page.locator("svg.chart.hourly rect.bar.settled").first.evaluate(
        "bar => getComputedStyle(bar).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)")  # coloured by console.css
    await shot(page, "dashboard")


async def a_viewer_cannot_retire_a_terminal(browser: Any, url: str) -> None:
    page = await browser.new_page()
    await sign_in(page, url, "binh")
    answer = await page.request.get(f"{url}/fleet/E2E/S0000001/decommission")
    assert answer.status == 403
    await page.goto(f"{url}/fleet/E2E/S0000001")
    assert await page.get_by_role("link", name="Decommission…").count() == 0
    await page.close()
