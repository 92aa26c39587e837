"""Every closed batch is reported to the center: a reconciliation.v1 event in
the outbox, committed with its Reconciliation row, saying what is missing
where and by how much (checked against schemas/reconciliation.v1.json)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from posgw.gateway.security import generate_keys, load_keys
from posgw.gateway.store import OutboxEvent, Reconciliation
from posgw.simulator import cards as demo
from posgw.simulator.requests import BatchTotals
from tests.gateway.test_pipeline import CARDS, Harness, harness_for

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Harness]:
    async for harness in harness_for(tmp_path):
        yield harness


def reports(gw: Harness) -> list[OutboxEvent]:
    return [row for row in gw.rows(OutboxEvent)
            if row.payload["schema"] == "reconciliation.v1"]


def signed_and_valid(payload: dict[str, Any], tmp_path: Path) -> None:
    keys = load_keys(generate_keys(tmp_path / "keys").parent)
    schema = json.loads((SCHEMAS / "reconciliation.v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(keys.signer.sign(payload))


async def test_a_mismatched_batch_is_reported_with_what_is_missing_at_the_gateway(
        gw: Harness, tmp_path: Path) -> None:
    await gw.send(gw.terminal.purchase(CARDS[demo.VISA_OK], 12_00))
    # The terminal counts a second sale of 12.00 the gateway never recorded.
    response = await gw.send(gw.terminal.settlement(BatchTotals(debits=2, debits_amount=24_00)))
    assert response.text(39) == "95"
    [batch] = gw.rows(Reconciliation)
    [event] = reports(gw)
    report = event.payload
    assert batch.report_event_id == report["event_id"]
    assert event.topic == "pos/v1/B001/T0000001/reconciliation"
    assert event.terminal_id == "T0000001"  # a retiring terminal waits for its report too
    assert (report["outcome"], report["terminal_id"]) == ("mismatched", "T0000001")
    assert report["missing_at_gateway"] == {"debits": 1}
    assert report["missing_at_terminal"] == {}
    assert report["amount_differences"] == {"debits": 12_00}
    assert report["ledger_totals"]["debits_amount"] == 12_00
    signed_and_valid(report, tmp_path)


async def test_sales_the_terminal_did_not_count_are_missing_at_the_terminal(
        gw: Harness, tmp_path: Path) -> None:
    await gw.send(gw.terminal.purchase(CARDS[demo.VISA_OK], 5_00))
    await gw.send(gw.terminal.refund(CARDS[demo.VISA_OK], 2_00))
    response = await gw.send(gw.terminal.settlement(BatchTotals(debits=1, debits_amount=5_00)))
    assert response.text(39) == "95"
    [event] = reports(gw)
    assert event.payload["missing_at_terminal"] == {"credits": 1}
    assert event.payload["amount_differences"] == {"credits": -2_00}
    signed_and_valid(event.payload, tmp_path)


async def test_a_matched_batch_is_reported_too(gw: Harness, tmp_path: Path) -> None:
    await gw.send(gw.terminal.purchase(CARDS[demo.VISA_OK], 7_00))
    response = await gw.send(gw.terminal.settlement(BatchTotals(debits=1, debits_amount=7_00)))
    assert response.text(39) == "00"
    [event] = reports(gw)
    assert event.payload["outcome"] == "matched" and event.payload["differences"] == {}
    assert event.payload["batch_opened_at"] is None  # the terminal's first batch
    signed_and_valid(event.payload, tmp_path)
