"""Freeze cases settled by center command: a released case reaches the
center as `settled`, a returned one as `refund`, both found by
`posgw center query`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlmodel import select

from posgw.center.commands import build_command, send_command
from posgw.center.models import ReceivedEvent
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.mqtt import MqttConfig
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from posgw.gateway.store import FreezeCase, Store
from posgw.gateway.store.reports import terminal_statement
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.drivers.helpers import wait_until
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    TCP_PROFILE,
    center_signed,
    center_toml,
    gateway_and_center,
    gateway_config,
    ledger_rows,
    topic_prefix,
    until_center_has,
)
from tests.e2e.test_commands import terminal_state
from tests.posgw_script import POSGW


def open_cases(database: str) -> dict[str, FreezeCase]:
    with Store(database) as store, store.session() as session:
        return {case.terminal_id: case for case in session.scalars(select(FreezeCase))}


def center_query(config: Path, rrn: str) -> list[dict[str, object]]:
    result = subprocess.run([POSGW, "center", "-c", str(config), "query", "--rrn", rrn,
                             "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


async def freeze_one(port: int, terminal_id: str, pan: str) -> None:
    """Three swipes of one card within minutes: the third approval is frozen."""
    transport = await connect_tcp("127.0.0.1", port)
    async with TerminalSimulator(TCP_PROFILE, transport, terminal_id, "M00000000000001",
                                 demo_cards(), response_timeout_s=5.0) as terminal:
        for step in range(3):
            assert (await terminal.purchase(pan, 20_00 + step)).approved


async def test_released_case_arrives_settled_and_returned_case_as_refund(
        tmp_path: Path) -> None:
    port = shared_broker_port()
    config = gateway_config(tmp_path, port)
    mqtt = MqttConfig("127.0.0.1", port, topic_prefix=topic_prefix(tmp_path))
    verifier = SignatureVerifier(
        {GATEWAY_ID: load_public_key(tmp_path / "keys" / PUBLIC_KEY_FILE)})
    async with gateway_and_center(config, tmp_path, port) as (gateway, center_store):
        await freeze_one(gateway.listener_ports[0], "F0000001", demo.VISA_OK)
        await freeze_one(gateway.listener_ports[0], "F0000002", demo.UNIONPAY_OK)
        cases = open_cases(config.database)
        for terminal_id, action in (("F0000001", "release"), ("F0000002", "return")):
            reply = await send_command(mqtt, center_signed(tmp_path, build_command(
                BRANCH, action, [cases[terminal_id].id])), wait_reply_s=15, verifier=verifier)
            assert reply is not None and reply["outcome"] == "done", reply
        again = await send_command(mqtt, center_signed(tmp_path, build_command(
            BRANCH, "release", [cases["F0000001"].id])),
                                   wait_reply_s=15, verifier=verifier)
        assert again is not None and again["outcome"] == "done"  # idempotent
        reply = await send_command(mqtt, center_signed(tmp_path, build_command(
            BRANCH, "decommission", ["F0000001"])),
                                   wait_reply_s=15, verifier=verifier)
        assert reply is not None and reply["outcome"] == "done"
        await wait_until(
            lambda: terminal_state(config.database, "F0000001") == "decommissioned", 20)
        rows = ledger_rows(config.database)
        await until_center_has(center_store, {row.event_id for row in rows})
        with Store(config.database) as store:
            statement = terminal_statement(store, "F0000001")
    by_status = {row.status: row for row in rows if row.original_event_id}
    frozen = {row.event_id: row for row in rows if row.status == "frozen"}
    assert set(by_status) == {"settled", "refund"} and len(rows) == 8  # 6 sales + 2 resolutions
    assert {row.original_event_id for row in by_status.values()} == set(frozen)
    assert {c.status for c in open_cases(config.database).values()} == {"released", "returned"}
    center_config = center_toml(tmp_path, port)
    for status, row in by_status.items():
        found = center_query(center_config, row.rrn or "")
        assert status in {event["status"] for event in found}
    # The retired terminal's final statement is what the center holds for it.
    at_center: dict[str, dict[str, int]] = {}
    with center_store.session() as session:
        for event in session.scalars(select(ReceivedEvent).where(
                ReceivedEvent.terminal_id == "F0000001")):
            entry = at_center.setdefault(event.status, {"count": 0, "amount_minor": 0})
            entry["count"] += 1
            entry["amount_minor"] += event.amount_minor
    assert statement["transactions"] == at_center
    assert statement["open_cases"] == 0 and statement["held_amount_minor"] == 0
    center_store.close()
