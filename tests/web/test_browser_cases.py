"""The cases desk in a real browser (Debian's chromium via Playwright), against
real processes: a `posgw run` gateway freezes a sale, a `posgw center`
ingest stores the case and everything after it, and `posgw center web`
serves the console, all over the shared mosquitto.

A risk officer opens the case from the queue, uploads a letter (kept at
the center; the branch records its hash), releases the case, sees the
branch's reply and then the re-clearing `settled` event on the case page.
A viewer gets 403 from every action route; a POST without its CSRF token
is refused. The queue and the case page are photographed; with
POSGW_SCREENSHOTS=docs/console the pictures land in the docs:

    POSGW_SCREENSHOTS=docs/console .venv/bin/pytest -n0 tests/web/test_browser_cases.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from posgw.center.command_key import PRIVATE_FILE
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from posgw.sandbox.ports import free_port, port_accepts
from posgw.simulator import cards as demo
from tests.brokers import shared_broker_port
from tests.center.processes import CenterProcess
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    center_keys,
    config_table,
    topic_prefix,
    wait_for,
    write_toml,
)
from tests.e2e.test_cases import freeze_one
from tests.posgw_script import POSGW, run_posgw
from tests.web.browser import BROWSER_MARKS, PASSWORD, chromium, follow, shot, sign_in
from tests.web.card_numbers import assert_no_card_number

LETTER = b"The cardholder confirms the three purchases at the counter.\n"
#: Long enough for a gateway, a center and a console on a busy two-core machine.
STEP_S = 60.0

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = BROWSER_MARKS


@dataclass
class Desk:
    url: str
    workdir: Path
    case_id: str
    logs: list[Path]
    seen: list[bytes] = field(default_factory=list)


def center_config(workdir: Path, port: int) -> Path:
    """This test's center: its gateway trusted, its command key, its topics."""
    return write_toml(workdir / "center.toml", {
        "center": {"database": f"sqlite:///{workdir / 'center.db'}",
                   "command_key": str(center_keys(workdir) / PRIVATE_FILE)},
        "mqtt": {"host": "127.0.0.1", "port": port, "topic_prefix": topic_prefix(workdir),
                 "share_group": f"g{uuid.uuid4().hex[:8]}", "session_expiry_s": 60},
        # No wait in the action: the page's own script then shows the reply.
        "cases": {"reply_wait_s": 0},
        "gateways": [{"id": GATEWAY_ID, "branch_id": BRANCH,
                      "public_key": str(workdir / "keys" / PUBLIC_KEY_FILE)}]})


def center_rows(workdir: Path, query: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(workdir / "center.db")) as db:
        return list(db.execute(query))


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        started = subprocess.Popen(args, stdout=output, stderr=output)
    try:
        yield started
    finally:
        started.send_signal(signal.SIGTERM)
        started.wait(timeout=30)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    workdir, port = tmp_path_factory.mktemp("desk"), shared_broker_port()
    listen, web_port = free_port(), free_port()
    gateway_toml = write_toml(workdir / "gateway.toml",
                              config_table(workdir, port, listen_port=listen))
    config = center_config(workdir, port)
    password = workdir / "password"
    password.write_text(PASSWORD + "\n")
    for name, role in (("chen", "risk"), ("binh", "viewer")):
        added = run_posgw("center", "-c", str(config), "users", "add", name, "--role", role,
                          "--password-file", str(password))
        assert added.returncode == 0, added.stderr
    center = CenterProcess(config)
    logs = [workdir / "gateway.log", workdir / "web.log"]
    try:
        center.wait_ready()
        with process([POSGW, "run", "-c", str(gateway_toml)], logs[0]), \
                process([POSGW, "center", "-c", str(config), "web", "--listen",
                         f"127.0.0.1:{web_port}"], logs[1]):
            wait_for(lambda: port_accepts(listen) and port_accepts(web_port),
                     "the gateway and the console to listen", STEP_S)
            asyncio.run(freeze_one(listen, "F0000001", demo.VISA_OK))
            wait_for(lambda: bool(center_rows(workdir, "SELECT case_id FROM center_cases")),
                     "the case at the center", STEP_S)
            [(case_id,)] = center_rows(workdir, "SELECT case_id FROM center_cases")
            yield Desk(f"http://127.0.0.1:{web_port}", workdir, case_id, logs)
    finally:
        center.process.send_signal(signal.SIGTERM)
        center.process.wait(30)
        (workdir / "center.log").write_text("\n".join(center.lines))
        logs.append(workdir / "center.log")


def reload_until(page: Any, selector: str, text: str) -> None:
    """Until `selector` shows `text`: the page's script reloads it while a
    reply is awaited; past that, reload as the staff would. With a deadline."""
    deadline = time.monotonic() + STEP_S
    while True:
        try:
            page.locator(selector, has_text=text).wait_for(timeout=5_000)
            return
        except sync_api.TimeoutError:
            assert time.monotonic() < deadline, f"no {text!r} in {selector}"
        with contextlib.suppress(sync_api.Error):  # the script may be reloading it too
            page.reload()


def test_a_risk_officer_releases_a_frozen_sale_in_chromium(desk: Desk) -> None:
    with chromium(sync_api) as browser:
        risk_officer_releases(browser, desk)
        the_case_in_vietnamese(browser, desk)
        viewer_gets_403_from_every_action(browser, desk)
        action_without_csrf_is_refused(browser, desk)
    no_card_number_anywhere(desk)


def risk_officer_releases(browser: Any, desk: Desk) -> None:
    page = browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 900})
    sign_in(page, desk.url, "chen")
    follow(page, page.get_by_role("link", name="Cases"))
    row = page.locator("table.cases tbody tr", has_text=desk.case_id)
    assert row.count() == 1 and "left" in row.inner_text()
    shot(page, "cases-queue", desk.seen)
    follow(page, row.get_by_role("link", name="Open"))
    assert "a first answer is due by" in page.locator("p.answer").inner_text()
    assert page.locator("table.attempts tbody tr").count() == 3  # the three swipes
    letter = desk.workdir / "letter.txt"
    letter.write_bytes(LETTER)
    page.locator("form.upload input[type=file]").set_input_files(str(letter))
    follow(page, page.locator("form.upload button[type=submit]"))
    reload_until(page, "table.evidence", "Recorded by the branch")
    release = page.locator("form.action-release")
    release.locator("input[name=confirm]").check()
    follow(page, release.locator("button[type=submit]"))
    # The branch's reply ("case ... released"), shown by the page reloading
    # itself (static/cases.js): no reload here.
    page.locator("table.commands", has_text="released").wait_for(timeout=STEP_S * 1000)
    reload_until(page, "table.resulting", "settled")
    assert "re-cleared to the merchant" in page.locator("p.answer").inner_text()
    assert page.locator("table.attempts tbody tr").count() == 3  # the resolution is apart
    shot(page, "case", desk.seen)
    replies = center_rows(desk.workdir, "SELECT outcome FROM center_command_replies")
    assert sorted(outcome for (outcome,) in replies) == ["done", "done"]
    [(held,)] = center_rows(desk.workdir, "SELECT evidence FROM center_cases")
    assert json.loads(held)[0]["held_at"] == "center"
    page.close()


def the_case_in_vietnamese(browser: Any, desk: Desk) -> None:
    page = browser.new_page(locale="vi-VN", viewport={"width": 1280, "height": 900})
    sign_in(page, desk.url, "binh")
    page.goto(f"{desk.url}/cases/{desk.case_id}")
    assert "Giao dịch đã được giải tỏa" in page.locator("p.answer").inner_text()
    shot(page, "case-vi", desk.seen)
    page.close()


def viewer_gets_403_from_every_action(browser: Any, desk: Desk) -> None:
    page = browser.new_page()
    sign_in(page, desk.url, "binh")
    page.goto(f"{desk.url}/cases/{desk.case_id}")
    assert page.locator("form.action-release").count() == 0  # not even shown
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    for action in ("release", "return", "expire"):
        answer = page.request.post(f"{desk.url}/cases/{desk.case_id}/{action}",
                                   form={"csrf_token": token, "confirm": "yes"})
        assert answer.status == 403, action
    upload = page.request.post(f"{desk.url}/cases/{desk.case_id}/evidence", multipart={
        "csrf_token": token,
        "file": {"name": "x.txt", "mimeType": "text/plain", "buffer": b"x"}})
    assert upload.status == 403
    page.close()


def action_without_csrf_is_refused(browser: Any, desk: Desk) -> None:
    page = browser.new_page()
    sign_in(page, desk.url, "chen")
    answer = page.request.post(f"{desk.url}/cases/{desk.case_id}/return",
                               form={"confirm": "yes"})
    assert answer.status == 403
    page.close()


def no_card_number_anywhere(desk: Desk) -> None:
    assert len(desk.seen) == 3
    pages = {f"page {n}": html for n, html in enumerate(desk.seen)}
    logs = {str(log): log.read_bytes() for log in desk.logs if log.exists()}
    assert_no_card_number({**pages, **logs}, {demo.VISA_OK},
                          binary={"center.db": (desk.workdir / "center.db").read_bytes()})
