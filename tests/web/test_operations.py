"""The operations pages over HTTP against the real app and its database:
the fleet, a terminal's page and its final statement, decommissioning
(admin only, confirmed, CSRF, signed and published to a real broker), the
reconciliation mismatches in words, the dashboard and its charts."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.testclient import TestClient

from posgw.center.command_key import generate_command_key
from posgw.center.fleet_status import stamp
from posgw.center.web.audit import latest
from posgw.drivers.mqtt import MqttConfig, new_client
from posgw.protocols.canonical_json import canonical_json, without_signature
from posgw.protocols.contract import (
    command_topic,
    gateway_status,
    reconciliation_event,
    terminal_status,
)
from tests.brokers import shared_broker_port
from tests.center.events import DAY, DAY_TEXT, GATEWAY_ID
from tests.e2e.harness import write_toml
from tests.store.pg import scratch_database
from tests.web.conftest import ConsoleSite, csrf_of, login, open_site

STATEMENT = {"terminal_id": "T0002", "transactions": {"settled": {"count": 3,
                                                                  "amount_minor": 3750}},
             "open_cases": 1, "held_amount_minor": 1250, "undelivered_events": 0}
OUTBOX = {"pending": 4, "published_unconfirmed": 2, "oldest_unconfirmed_age_s": 30,
          "center_silent": False}
DECOMMISSION = "/fleet/B001/T0001/decommission"


def mismatch_report(n: int) -> dict[str, Any]:
    """T0001's batch: the terminal counted 2 sales the ledger lacks (25.00
    EUR), and the ledger holds a refund the terminal did not count."""
    report = {"outcome": "mismatched", "batch_opened_at": None,
              "batch_closed_at": f"{DAY_TEXT}T18:00:00Z",
              "terminal_totals": {"debits": 5}, "ledger_totals": {"debits": 3},
              "differences": {"debits": {"terminal": 5, "ledger": 3}},
              "missing_at_gateway": {"debits": 2}, "missing_at_terminal": {"credits": 1},
              "amount_differences": {"debits": 2500, "credits": -1250}}
    return {**reconciliation_event("T0001", report, event_id=f"rec-{n}", branch_id="B001",
                                   gateway_id=GATEWAY_ID, occurred_at=DAY), "seq": 100 + n}


@pytest.fixture
def fleet_site(site: ConsoleSite) -> ConsoleSite:
    return with_fleet(site)


def with_fleet(site: ConsoleSite) -> ConsoleSite:
    """The site's events, T0001 online, T0002 retired with its statement,
    gw-1 online with 6 events waiting, one mismatched batch."""
    t1 = terminal_status("T0001", "online", profile="iso87-ascii", event_id="s1",
                         branch_id="B001", gateway_id=GATEWAY_ID, occurred_at=DAY)
    t2 = {**terminal_status("T0002", "decommissioned", profile="ecr-stx-lrc", event_id="s2",
                            branch_id="B001", gateway_id=GATEWAY_ID, occurred_at=DAY),
          "statement": STATEMENT}
    birth = gateway_status("online", last_seq=120, event_id="g1", branch_id="B001",
                           gateway_id=GATEWAY_ID, occurred_at=DAY, outbox=OUTBOX)
    site.store.writer().write([], [], recorded=[t1, t2, birth])
    site.store.insert_event("pos/v1/B001/T0001/reconciliation", mismatch_report(1))
    return site


def test_the_fleet_shows_the_gateway_and_the_terminals_per_branch(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    page = signed_in("viewer").get("/fleet")
    assert page.status_code == 200
    gateway_row = page.text.split('<table class="results gateways">')[1].split("</table>")[0]
    assert GATEWAY_ID in gateway_row and 'class="state online"' in gateway_row
    assert ">6 <" in gateway_row  # 4 unsent + 2 unconfirmed
    terminals = page.text.split('<table class="results terminals">')[1]
    assert 'T0001</td><td><span class="state online">' in terminals
    assert 'T0002</td><td><span class="state decommissioned">' in terminals


def test_a_retired_terminal_shows_its_final_statement_and_the_centers_totals(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    page = signed_in("viewer").get("/fleet/B001/T0002")
    assert page.status_code == 200 and "Final statement" in page.text
    assert "€37.50" not in page.text  # T0002 has no events at the center: no currency
    assert "3750 (minor units)" in page.text
    retired_with_events = signed_in("viewer").get("/fleet/B001/T0001")
    assert "€37.50" in retired_with_events.text  # 3 settled sales of 12.50 at the center
    assert signed_in("viewer").get("/fleet/B001/T9999").status_code == 404
    assert signed_in("viewer").get("/fleet/B001/T%3Cx%3E").status_code == 404


def test_a_viewer_and_a_risk_officer_may_not_decommission(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    for role in ("viewer", "risk"):
        client = signed_in(role)
        token = csrf_of(client.get("/fleet").text)
        assert client.get(DECOMMISSION).status_code == 403
        answer = client.post(DECOMMISSION, data={"csrf_token": token,
                                                 "confirm_terminal": "T0001"})
        assert answer.status_code == 403
    assert "Decommission" not in signed_in("viewer").get("/fleet/B001/T0001").text


def test_a_decommission_without_the_csrf_token_is_refused(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    answer = signed_in("admin").post(DECOMMISSION, data={"confirm_terminal": "T0001"})
    assert answer.status_code == 403
    assert [(e.action, e.outcome) for e in latest(fleet_site.store.engine, 1)] == [
        ("denied", "refused (csrf)")]


def test_a_decommission_needs_the_terminal_id_typed_again(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    admin = signed_in("admin")
    confirm = admin.get(DECOMMISSION)
    assert confirm.status_code == 200 and 'name="confirm_terminal"' in confirm.text
    answer = admin.post(DECOMMISSION, data={"csrf_token": csrf_of(confirm.text),
                                            "confirm_terminal": "T0002"})
    assert answer.status_code == 400 and "Type the terminal id exactly" in answer.text
    assert "draining" not in admin.get("/fleet").text


def test_without_a_command_key_nothing_is_sent(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    admin = signed_in("admin")
    answer = admin.post(DECOMMISSION, data={"csrf_token": csrf_of(admin.get(DECOMMISSION).text),
                                            "confirm_terminal": "T0001"})
    assert answer.status_code == 409 and "no command key" in answer.text
    assert [(e.action, e.outcome) for e in latest(fleet_site.store.engine, 1)] == [
        ("decommission", "no key")]


def test_a_retired_terminal_cannot_be_decommissioned_again(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    assert signed_in("admin").get("/fleet/B001/T0002/decommission").status_code == 409


async def test_an_admin_decommission_is_signed_published_and_shown_draining(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient], tmp_path: Path) -> None:
    public = load_pem_public_key(generate_command_key(tmp_path / "command").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    prefix = f"ops-{uuid.uuid4().hex[:8]}"
    mqtt = MqttConfig("127.0.0.1", shared_broker_port(), topic_prefix=prefix)
    write_toml(fleet_site.config_path, {
        "center": {"database": f"sqlite:///{tmp_path / 'center.db'}",
                   "command_key": str(tmp_path / "command" / "command.key")},
        "mqtt": {"host": "127.0.0.1", "port": mqtt.port, "topic_prefix": prefix}})
    admin = signed_in("admin")
    token = csrf_of(admin.get(DECOMMISSION).text)
    async with new_client(mqtt, client_id=f"ops-gw-{uuid.uuid4().hex[:8]}") as gateway:
        await gateway.subscribe(command_topic(prefix, "B001"), qos=1)
        posted = asyncio.create_task(asyncio.to_thread(
            admin.post, DECOMMISSION, data={"csrf_token": token, "confirm_terminal": "T0001"}))
        async with asyncio.timeout(30):
            message = await anext(aiter(gateway.messages))
        answer = await posted
    command = json.loads(bytes(message.payload))  # type: ignore[arg-type]
    assert (command["command"], command["terminal_id"]) == ("decommission", "T0001")
    public.verify(base64.b64decode(command["signature"]),
                  canonical_json(without_signature(command)))
    assert (answer.status_code, answer.headers["location"]) == (303, "/fleet/B001/T0001")
    assert 'T0001</td><td><span class="state draining">' in admin.get("/fleet").text
    assert [(e.action, e.outcome, e.object) for e in latest(fleet_site.store.engine, 1)] == [
        ("decommission", "sent", "B001/T0001")]


def test_reconciliation_lists_the_mismatched_batch_in_words(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    viewer = signed_in("viewer")
    page = viewer.get("/reconciliation")
    assert page.status_code == 200
    assert "sales counted by the terminal but missing at the center: 2" in page.text
    assert "refunds at the center that the terminal did not count: 1" in page.text
    assert "sales: the terminal&#39;s total exceeds the center&#39;s by €25.00" in page.text
    assert "missing at the center" in viewer.get(
        f"/reconciliation?day={DAY_TEXT}&branch=B001").text
    other_day = (DAY - timedelta(days=1)).date().isoformat()
    assert "missing at the center" not in viewer.get(f"/reconciliation?day={other_day}").text
    assert "missing at the center" not in viewer.get("/reconciliation?branch=B002").text
    assert viewer.get("/reconciliation?day=yesterday").status_code == 400


def test_the_dashboard_totals_and_draws_its_charts_as_inline_svg(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    page = signed_in("viewer").get(f"/dashboard?day={DAY_TEXT}")
    assert page.status_code == 200
    totals = page.text.split('<table class="results totals">')[1].split("</table>")[0]
    assert "settled" in totals and "€37.50" in totals and "reversed" in totals
    hourly = page.text.split('<svg class="chart hourly"')[1].split("</svg>")[0]
    assert hourly.count('<rect class="bar settled"') == 1  # every event at 10:00
    assert "10:00 settled: 3" in hourly
    freeze = page.text.split('<svg class="chart freeze"')[1].split("</svg>")[0]
    assert '<polyline class="line series-0"' in freeze and "B001" in freeze
    assert "style=" not in page.text  # the CSP refuses inline styles


def test_signed_in_home_is_the_dashboard(signed_in: Callable[[str], TestClient]) -> None:
    assert signed_in("viewer").get("/").headers["location"] == "/dashboard"


def test_a_status_stamp_is_fixed_width() -> None:
    assert stamp(DAY) == f"{DAY_TEXT}T10:00:00.000000Z"


def test_the_operations_pages_work_over_postgresql(tmp_path: Path) -> None:
    with scratch_database() as url:
        site = with_fleet(open_site(tmp_path, url))
        try:
            client = site.client()
            assert login(client, "viewer") == 303
            fleet = client.get("/fleet").text
            assert 'T0001</td><td><span class="state online">' in fleet and ">6 <" in fleet
            assert "3750 (minor units)" in client.get("/fleet/B001/T0002").text
            assert "sales counted by the terminal but missing at the center: 2" in client.get(
                f"/reconciliation?day={DAY_TEXT}&branch=B001").text
            dashboard = client.get(f"/dashboard?day={DAY_TEXT}").text
            assert "10:00 settled: 3" in dashboard and "€37.50" in dashboard
            assert '<polyline class="line series-0"' in dashboard
        finally:
            site.store.close()


def test_the_operations_pages_speak_vietnamese_and_chinese(
        fleet_site: ConsoleSite, signed_in: Callable[[str], TestClient]) -> None:
    viewer = signed_in("viewer")
    fleet = viewer.get("/fleet", headers={"accept-language": "vi"}).text
    assert "Gateway" in fleet and "trực tuyến" in fleet and "đã ngừng hoạt động" in fleet
    differences = viewer.get("/reconciliation", headers={"accept-language": "zh-CN"}).text
    assert "销售：终端计入的 2 笔在中心缺失" in differences
    assert "销售：终端合计比中心多 €25.00" in differences
