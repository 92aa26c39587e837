"""`posgw demo --console`, as a newcomer runs it: the real command, its URL
and one-time password read from its output, sign-in over HTTP (a new
password chosen first), the demo's payments found through the search, the
audit exported; then Ctrl-C, exit 0. No card number in any page fetched,
the console's log or the audit CSV."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from posgw.sandbox.demo.cards import card_pool
from posgw.sandbox.demo.stack import BRANCH, MERCHANT
from tests.e2e.harness import wait_for
from tests.posgw_script import POSGW
from tests.web.card_numbers import assert_no_card_number

INVITATION = re.compile(r"center console: (http://\S+/)\s+sign in as (\S+) with the "
                        r"one-time password (\S+)")
NEW_PASSWORD = "the newcomer's own password"
SEED = 1


class Output:
    """The demo's stdout, read as it comes (a thread owns the pipe)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.text = ""
        self._pipe = process.stdout
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._pipe:
            self.text += line

    def finished(self) -> str:
        self._reader.join(timeout=30)
        return self.text


class Visitor:
    """A browser without JavaScript: forms, redirects by hand, and cookies
    kept by hand (httpx keeps no Secure cookie over http, a browser does
    for 127.0.0.1)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
        self.cookies: dict[str, str] = {}
        self.pages: list[bytes] = []

    def request(self, method: str, path: str, **form: str) -> httpx.Response:
        header = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        answer = self.http.request(method, path, data=form or None,
                                   headers={"cookie": header} if header else {})
        for cookie in answer.headers.get_list("set-cookie"):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if value and "max-age=0" not in cookie.lower():
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        self.pages.append(answer.content)
        return answer

    def token(self, path: str, field: str = "csrf_token") -> str:
        page = self.request("GET", path).text
        return page.split(f'name="{field}" value="', 1)[1].split('"', 1)[0]


def newcomer_visit(url: str, name: str, password: str) -> Visitor:
    visitor = Visitor(url)
    login_token = visitor.token("/login", "login_token")
    signed = visitor.request("POST", "/login", name=name, password=password,
                             login_token=login_token)
    assert (signed.status_code, signed.headers["location"]) == (303, "/account/password")
    assert visitor.request("GET", "/search").headers["location"] == "/account/password"
    changed = visitor.request("POST", "/account/password", current=password,
                              new=NEW_PASSWORD, repeat=NEW_PASSWORD,
                              csrf_token=visitor.token("/account/password"))
    assert changed.headers["location"] == "/search"
    today = datetime.now(UTC).date().isoformat()
    found = visitor.request("POST", "/search", kind="place", branch=BRANCH, day=today,
                            csrf_token=visitor.token("/search"))
    assert found.status_code == 200 and "******" in found.text  # cards shown masked
    links = re.findall(r'href="(/tx/[^"]+)"', found.text)
    assert len(links) >= 5, "the demo's payments at the center, found by branch"
    by_merchant = visitor.request("POST", "/search", kind="place", merchant=MERCHANT,
                                  day=today, csrf_token=visitor.token("/search"))
    # Each demo terminal is its own merchant's: MERCHANT is the IP terminal T0000001's.
    assert 0 < by_merchant.text.count('href="/tx/') <= len(links)
    assert "<td>T0000001</td>" in by_merchant.text
    assert "<td>T0000902</td>" not in by_merchant.text  # the USB terminal: another merchant
    story = visitor.request("GET", links[0])
    assert story.status_code == 200 and "Arrived at the center" in story.text
    return visitor


@pytest.mark.e2e
def test_demo_console_lets_a_newcomer_search_the_demo_then_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    demo = subprocess.Popen([POSGW, "demo", "--duration", "4", "--terminals", "1",
                             "--seed", str(SEED), "--console", "--workdir", str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(demo)
    try:
        wait_for(lambda: INVITATION.search(output.text) is not None or demo.poll() is not None,
                 "the console's address and password", timeout=180)
        invitation = INVITATION.search(output.text)
        assert invitation is not None, output.text
        url, name, password = invitation.groups()
        assert url.startswith("http://127.0.0.1:") and name == "admin"
        visitor = newcomer_visit(url, name, password)
        audit = visitor.request("GET", "/admin/audit.csv")
        assert audit.status_code == 200 and "admin,change password,admin,ok" in audit.text
        assert password not in audit.text
    finally:
        demo.send_signal(signal.SIGINT)
        status = demo.wait(timeout=60)
    text = output.finished()
    assert status == 0, text
    assert "console stopped" in text
    known = [card.pan for card in card_pool(SEED)]
    pages = {f"page {n}": page for n, page in enumerate(visitor.pages)}
    assert_no_card_number({**pages, "demo.log": (workdir / "demo.log").read_bytes(),
                           "audit.csv": audit.content, "demo output": text.encode()}, known,
                          binary={"center.db": (workdir / "center.db").read_bytes()})
    assert password not in (workdir / "demo.log").read_text()


@pytest.mark.e2e
def test_sigterm_stops_the_console_too_and_the_demo_folder_is_removed() -> None:
    demo = subprocess.Popen([POSGW, "demo", "--duration", "1", "--terminals", "0",
                             "--console"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output = Output(demo)
    try:
        wait_for(lambda: INVITATION.search(output.text) is not None or demo.poll() is not None,
                 "the console's address and password", timeout=180)
    finally:
        demo.send_signal(signal.SIGTERM)
        status = demo.wait(timeout=60)
    text = output.finished()
    folder = re.search(r"work dir:\s+(\S+)", text)
    assert status == 0 and folder is not None, text
    assert "console stopped" in text and not Path(folder.group(1)).exists()


def test_demo_console_listen_is_checked_before_the_demo_runs() -> None:
    result = subprocess.run([POSGW, "demo", "--console", "--console-listen", "nowhere"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "HOST:PORT" in result.stderr
