"""A batch that does not reconcile reaches head office: the terminal's 0500
counts a sale the gateway never recorded, the terminal hears 95, the signed
reconciliation.v1 report travels a real broker to the center, which stores
it (not among the transactions, not in quarantine), and `posgw status`
lists it on the branch."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

from sqlmodel import select

from posgw.center.db import CenterStore
from posgw.center.models import QuarantinedPayload, ReceivedReconciliation
from posgw.drivers.tcp_link import connect_tcp
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.drivers.helpers import wait_until
from tests.e2e.harness import (
    TCP_PROFILE,
    gateway_and_center,
    gateway_config,
    ledger_rows,
    until_center_has,
)
from tests.posgw_script import POSGW


def stored_reports(center: CenterStore) -> list[ReceivedReconciliation]:
    with center.session() as session:
        return list(session.scalars(select(ReceivedReconciliation)))


def quarantined(center: CenterStore) -> list[str]:
    with center.session() as session:
        return list(session.scalars(select(QuarantinedPayload.reason)))


async def sell_then_settle_with_one_sale_too_many(port: int) -> str:
    """Two sales, then a 0500 that counts a third (say, one the terminal
    approved offline and never sent): the answer's response code."""
    transport = await connect_tcp("127.0.0.1", port)
    async with TerminalSimulator(TCP_PROFILE, transport, "S0000001", "M00000000000001",
                                 demo_cards(), response_timeout_s=5.0) as terminal:
        assert (await terminal.purchase(demo.VISA_OK, 40_00)).approved
        assert (await terminal.purchase(demo.UNIONPAY_OK, 10_00)).approved
        totals = terminal.totals
        terminal.totals = replace(totals, debits=totals.debits + 1,
                                  debits_amount=totals.debits_amount + 25_00)
        return (await terminal.settle()).response_code or ""


async def test_a_mismatched_batch_reaches_the_center_as_a_reconciliation_report(
        tmp_path: Path) -> None:
    port = shared_broker_port()
    config = gateway_config(tmp_path, port)
    async with gateway_and_center(config, tmp_path, port) as (gateway, center):
        assert await sell_then_settle_with_one_sale_too_many(gateway.listener_ports[0]) == "95"
        await until_center_has(center, {row.event_id for row in ledger_rows(config.database)})
        await wait_until(lambda: bool(stored_reports(center)), 30)
    [report] = stored_reports(center)
    assert (report.terminal_id, report.outcome) == ("S0000001", "mismatched")
    assert report.topic.endswith("/E2E/S0000001/reconciliation")
    assert report.payload["missing_at_gateway"] == {"debits": 1}
    assert report.payload["amount_differences"] == {"debits": 25_00}
    assert report.payload["ledger_totals"]["debits_amount"] == 50_00
    assert quarantined(center) == []
    center.close()
    status = subprocess.run([POSGW, "status", "--database", config.database, "--json"],
                            capture_output=True, text=True, timeout=60)
    [listed] = json.loads(status.stdout)["unreconciled"]
    assert listed["report_event_id"] == report.event_id
    assert listed["missing_at_gateway"] == {"debits": 1}
