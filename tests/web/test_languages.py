"""English, Vietnamese and Simplified Chinese: every UI string translated,
the language chosen per account or from Accept-Language, amounts per currency."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from starlette.testclient import TestClient

from posgw.center.web import (
    case_story,
    cases,
    decommission,
    fleet,
    operations,
    password,
    reconciliation,
    search,
    story,
)
from posgw.center.web.i18n import LOCALE_DIR, choose, language
from posgw.center.web.models import ROLES
from posgw.protocols.contract import TX_STATUSES
from tests.web.conftest import ConsoleSite, csrf_of

WEB = Path(story.__file__).parent
_CALL = re.compile(r"""_\((["'])(.*?)\1\)""")
_PY_CALL = re.compile(r'_\(\s*((?:"[^"]*"\s*)+)')


def used_msgids() -> set[str]:
    """Every string the console passes through gettext."""
    found = {m.group(2) for page in (WEB / "templates").glob("*.html")
             for m in _CALL.finditer(page.read_text(encoding="utf-8"))}
    found |= {"".join(re.findall(r'"([^"]*)"', m.group(1)))
              for module in (story, case_story)
              for m in _PY_CALL.finditer(Path(module.__file__ or "").read_text(encoding="utf-8"))}
    return (found | set(search.FIELD_LABELS.values()) | set(TX_STATUSES) | set(ROLES)
            | set(reconciliation.WORDING) | set(operations.MESSAGES) | set(fleet.STATES)
            | set(decommission.OUTCOMES)
            | set(case_story.STATUS_LABELS.values()) | set(case_story.COMMAND_LABELS.values())
            | set(cases.MESSAGES) | set(password.PROBLEMS.values()))


@pytest.mark.parametrize("code", ["vi", "zh_Hans"])
def test_every_ui_string_has_a_translation(code: str) -> None:
    with (LOCALE_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    translated = {message.id for message in catalog if message.id and message.string}
    missing = used_msgids() - translated
    assert len(used_msgids()) > 70 and not missing


def test_placeholders_survive_translation() -> None:
    for code in ("vi", "zh_Hans"):
        for msgid in used_msgids():
            fields = set(re.findall(r"\{\w+\}", msgid))
            assert set(re.findall(r"\{\w+\}", language(code).gettext(msgid))) == fields


def test_the_browser_language_picks_the_catalogue() -> None:
    assert choose("", "vi-VN,vi;q=0.9,en;q=0.5").code == "vi"
    assert choose("", "fr-FR, zh-CN;q=0.8").code == "zh_Hans"
    assert choose("", "zh-TW").code == "en"  # Traditional is not shipped
    assert choose("vi", "zh-CN").code == "vi"  # the account's setting wins


def test_vnd_has_no_minor_unit_and_eur_has_two() -> None:
    assert language("en").money(125000, "VND") == "₫125,000"
    assert language("vi").money(125000, "VND") == "125.000\xa0₫"
    assert language("en").money(1250, "EUR") == "€12.50"


def test_pages_follow_accept_language_then_the_account_setting(
        site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    anonymous = site.client()
    assert "Đăng nhập" in anonymous.get("/login", headers={"accept-language": "vi"}).text
    assert "登录" in anonymous.get("/login", headers={"accept-language": "zh-CN"}).text
    client = signed_in("viewer")
    token = csrf_of(client.get("/search").text)
    client.post("/account/language", data={"csrf_token": token, "language": "zh_Hans"})
    page = client.get("/search", headers={"accept-language": "vi"})
    assert "款项到了吗？" in page.text and 'lang="zh-Hans"' in page.text
