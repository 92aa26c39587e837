"""The cases desk over HTTP, against the real app and database: the queue,
a case's page, who may act, the CSRF token, the confirmation, the command
key, evidence bounds; and with a real broker, the signed command itself."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlmodel import Session, select
from starlette.testclient import TestClient

from posgw.center.command_key import PUBLIC_FILE
from posgw.center.web.audit import latest
from posgw.center.web.case_models import ConsoleCommand, EvidenceFile
from posgw.protocols.canonical_json import canonical_json, without_signature
from tests.center.cases import reply
from tests.store.pg import scratch_database
from tests.web.case_desk import (
    FROZEN,
    LATER_CASE,
    MAX_EVIDENCE_BYTES,
    MAX_EVIDENCE_FILES,
    OVERDUE_CASE,
    RELEASED_CASE,
    commands_heard,
    configure,
    fill_cases,
)
from tests.web.conftest import ConsoleSite, csrf_of, login, open_site

ACTIONS = ("release", "return", "expire")
LETTER = b"The cardholder confirms the three purchases.\n"


@pytest.fixture
def desk(site: ConsoleSite, tmp_path: Path) -> ConsoleSite:
    fill_cases(site.store, site.keys)
    configure(site, tmp_path, command_key=False)
    return site


def sent(site: ConsoleSite) -> list[ConsoleCommand]:
    with Session(site.store.engine) as session:
        return list(session.scalars(select(ConsoleCommand)))


def case_url(case_id: str, action: str = "") -> str:
    return f"/cases/{case_id}" + (f"/{action}" if action else "")


def test_the_queue_puts_overdue_cases_first_and_filters(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("viewer")
    page = client.get("/cases").text
    assert page.index(OVERDUE_CASE) < page.index(LATER_CASE)
    assert RELEASED_CASE not in page
    assert "Overdue by 1 h" in page and "4 h 59 min left" in page
    assert RELEASED_CASE in client.get("/cases?status=released").text
    assert OVERDUE_CASE not in client.get("/cases?branch=B002").text


def test_the_case_page_tells_the_whole_case(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    page = signed_in("viewer").get(case_url(OVERDUE_CASE))
    assert page.status_code == 200
    html = page.text
    assert f'href="/tx/{FROZEN}"' in html  # the frozen sale, linked
    # The same card on the same terminal that day: three settled sales, the
    # reversal of the first and three frozen ones.
    assert html.count('<tr class="frozen">') == 1
    assert html.split('class="results attempts"')[1].split("</table>")[0].count("<tr") == 8
    assert "repeated_card" in html and "a first answer is due by" in html
    assert "476173******0010" in html and "4761730000000010" not in html
    assert 'action="/cases/' not in html  # a viewer is shown no action


def test_a_released_case_promises_the_re_clearing_date_in_working_days(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    html = signed_in("viewer").get(case_url(RELEASED_CASE)).text
    assert "re-cleared to the merchant" in html and "(5 working days)" in html


def test_a_viewer_gets_403_from_every_case_action(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("viewer")
    token = csrf_of(client.get("/cases").text)
    for action in ACTIONS:
        answer = client.post(case_url(OVERDUE_CASE, action),
                             data={"csrf_token": token, "confirm": "yes"})
        assert answer.status_code == 403, action
    upload = client.post(case_url(OVERDUE_CASE, "evidence"), data={"csrf_token": token},
                         files={"file": ("letter.txt", LETTER, "text/plain")})
    assert upload.status_code == 403
    assert client.get(case_url(OVERDUE_CASE, "evidence") + "/" + "ab" * 32).status_code == 403
    assert sent(desk) == []


def test_an_action_without_the_csrf_token_is_refused(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("risk")
    for action in ACTIONS:
        assert client.post(case_url(OVERDUE_CASE, action),
                           data={"confirm": "yes"}).status_code == 403
    upload = client.post(case_url(OVERDUE_CASE, "evidence"),
                         files={"file": ("letter.txt", LETTER, "text/plain")})
    assert upload.status_code == 403 and sent(desk) == []


def test_an_action_needs_its_confirmation_box(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("risk")
    token = csrf_of(client.get(case_url(OVERDUE_CASE)).text)
    answer = client.post(case_url(OVERDUE_CASE, "release"), data={"csrf_token": token})
    assert answer.status_code == 409 and "Tick the confirmation box" in answer.text
    assert sent(desk) == []


def test_without_a_command_key_nothing_is_sent(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("risk")
    token = csrf_of(client.get(case_url(OVERDUE_CASE)).text)
    answer = client.post(case_url(OVERDUE_CASE, "release"),
                         data={"csrf_token": token, "confirm": "yes"})
    assert answer.status_code == 409 and "No command key is configured" in answer.text
    upload = client.post(case_url(OVERDUE_CASE, "evidence"), data={"csrf_token": token},
                         files={"file": ("letter.txt", LETTER, "text/plain")})
    assert upload.status_code == 409 and sent(desk) == []
    with Session(desk.store.engine) as session:
        assert session.scalars(select(EvidenceFile)).first() is None
    assert [(e.action, e.outcome) for e in latest(desk.store.engine, 2)] == [
        ("upload evidence", "failed"), ("release", "failed")]


def test_a_resolved_case_takes_no_action(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("admin")  # admin may do what risk may
    token = csrf_of(client.get(case_url(RELEASED_CASE)).text)
    answer = client.post(case_url(RELEASED_CASE, "expire"),
                         data={"csrf_token": token, "confirm": "yes"})
    assert answer.status_code == 409 and "already resolved" in answer.text


def test_evidence_past_its_size_cap_is_refused_unread(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("risk")
    token = csrf_of(client.get(case_url(OVERDUE_CASE)).text)
    answer = client.post(case_url(OVERDUE_CASE, "evidence"), data={"csrf_token": token},
                         files={"file": ("scan.png", b"x" * (MAX_EVIDENCE_BYTES + 70_000),
                                         "image/png")})
    assert answer.status_code == 413 and "File too large" in answer.text


def test_evidence_showing_a_card_number_is_refused_and_not_kept(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("risk")
    token = csrf_of(client.get(case_url(OVERDUE_CASE)).text)
    answer = client.post(case_url(OVERDUE_CASE, "evidence"), data={"csrf_token": token},
                         files={"file": ("receipt.txt", b"card 4111 1111 1111 1111\n",
                                         "text/plain")})
    assert answer.status_code == 400 and "looks like a card number" in answer.text
    assert "4111 1111 1111 1111" not in answer.text
    with Session(desk.store.engine) as session:
        assert session.scalars(select(EvidenceFile)).first() is None


@pytest.fixture
def keyed_desk(site: ConsoleSite, tmp_path: Path) -> tuple[ConsoleSite, str]:
    fill_cases(site.store, site.keys)
    return site, configure(site, tmp_path, command_key=True)


def test_release_publishes_a_signed_command_and_the_page_shows_the_reply(
        keyed_desk: tuple[ConsoleSite, str], tmp_path: Path,
        signed_in: Callable[[str], TestClient]) -> None:
    site, prefix = keyed_desk
    client = signed_in("risk")
    token = csrf_of(client.get(case_url(OVERDUE_CASE)).text)
    with commands_heard(f"{prefix}/B001/cmd") as heard:
        answer = client.post(case_url(OVERDUE_CASE, "release"),
                             data={"csrf_token": token, "confirm": "yes"})
        assert answer.status_code == 303
        assert heard.arrived.wait(10)
    [command] = heard.commands
    assert (command["command"], command["case_id"], command["branch_id"]) == (
        "release", OVERDUE_CASE, "B001")
    public = load_pem_public_key((tmp_path / "command-keys" / PUBLIC_FILE).read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(base64.b64decode(command["signature"]),
                  canonical_json(without_signature(command)))  # raises if not the center's
    [recorded] = sent(site)
    assert (recorded.command_id, recorded.action, recorded.by) == (
        command["command_id"], "release", "risk")
    assert "Waiting for the branch" in client.get(case_url(OVERDUE_CASE)).text
    site.store.writer().quarantine([], recorded=[reply(site.keys, 30, command["command_id"])])
    page = client.get(case_url(OVERDUE_CASE)).text
    assert "<strong>done</strong>: case released" in page
    assert ("release", "sent") in [(e.action, e.outcome) for e in latest(site.store.engine)]


def test_evidence_is_kept_once_by_hash_and_the_branch_gets_its_metadata(
        keyed_desk: tuple[ConsoleSite, str], signed_in: Callable[[str], TestClient]) -> None:
    site, prefix = keyed_desk
    client = signed_in("risk")
    token = csrf_of(client.get(case_url(LATER_CASE)).text)
    with commands_heard(f"{prefix}/B001/cmd") as heard:
        for _ in range(MAX_EVIDENCE_FILES):
            answer = client.post(case_url(LATER_CASE, "evidence"), data={"csrf_token": token},
                                 files={"file": ("../letter.txt", LETTER, "text/plain")})
            assert answer.status_code == 303
        assert heard.arrived.wait(10)
        one_more = client.post(case_url(LATER_CASE, "evidence"), data={"csrf_token": token},
                               files={"file": ("other.txt", b"more", "text/plain")})
    assert one_more.status_code == 400 and "as many evidence files" in one_more.text
    digest = hashlib.sha256(LETTER).hexdigest()
    with Session(site.store.engine) as session:
        assert [f.sha256 for f in session.scalars(select(EvidenceFile))] == [digest]
    evidence = heard.commands[0]["evidence"]
    assert heard.commands[0]["command"] == "submit_evidence"
    assert evidence == {"sha256": digest, "size_bytes": len(LETTER), "filename": "letter.txt",
                        "submitted_by": "risk", "held_at": "center"}
    download = client.get(f"/cases/{LATER_CASE}/evidence/{digest}")
    assert download.content == LETTER
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment")


def test_the_desk_works_over_postgresql(tmp_path: Path) -> None:
    with scratch_database() as url:
        site = open_site(tmp_path, url)
        try:
            fill_cases(site.store, site.keys)
            prefix = configure(site, tmp_path, command_key=True)
            client = site.client()
            assert login(client, "risk") == 303
            queue = client.get("/cases").text
            assert queue.index(OVERDUE_CASE) < queue.index(LATER_CASE)
            token = csrf_of(client.get(case_url(OVERDUE_CASE)).text)
            with commands_heard(f"{prefix}/B001/cmd") as heard:
                upload = client.post(case_url(OVERDUE_CASE, "evidence"),
                                     data={"csrf_token": token},
                                     files={"file": ("letter.txt", LETTER, "text/plain")})
                assert upload.status_code == 303 and heard.arrived.wait(10)
            digest = hashlib.sha256(LETTER).hexdigest()
            assert client.get(f"/cases/{OVERDUE_CASE}/evidence/{digest}").content == LETTER
            site.store.writer().quarantine([], recorded=[
                reply(site.keys, 31, heard.commands[0]["command_id"], detail="recorded")])
            assert "<strong>done</strong>: recorded" in client.get(case_url(OVERDUE_CASE)).text
            assert client.get("/cases/no-such-case").status_code == 404
        finally:
            site.store.close()


def test_the_desk_speaks_vietnamese_and_chinese(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("risk")
    for language, queue_title, answer_start in (
            ("vi", "Hồ sơ phong tỏa", "Tiền đang bị giữ theo quy tắc rủi ro"),
            ("zh-CN", "冻结案件", "款项因风险规则")):
        headers = {"accept-language": language}
        assert queue_title in client.get("/cases", headers=headers).text
        page = client.get(case_url(OVERDUE_CASE), headers=headers)
        assert page.status_code == 200 and answer_start in page.text, language


def test_a_case_page_reloaded_while_a_reply_is_awaited_is_audited_once(
        desk: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    viewer, risk = signed_in("viewer"), signed_in("risk")
    for _ in range(5):  # cases.js reloads it every 3 s
        assert viewer.get(case_url(OVERDUE_CASE)).status_code == 200
    risk.get(case_url(OVERDUE_CASE))
    viewer.get(case_url(LATER_CASE))
    views = [(entry.actor, entry.object) for entry in latest(desk.store.engine)
             if entry.action == "view case"]
    assert sorted(views) == sorted([("viewer", OVERDUE_CASE), ("risk", OVERDUE_CASE),
                                    ("viewer", LATER_CASE)])
