"""The center checks each payload against the schema it claims (schemas/*.json).

Every payload here is correctly signed by a trusted gateway: only its shape
is wrong, and the schema validator's message is the quarantine reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.models import QuarantinedPayload
from posgw.center.validation import check_against_schema, compiled_schemas
from posgw.center.verify import BadPayload
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security import GatewayKeys
from posgw.protocols.contract import SCHEMA_NAMES
from tests.center.events import resigned, signed_event, verifier

TOPIC = "pos/v1/B001/T0001/tx"





async def quarantine_reason(center: CenterStore, keys: GatewayKeys,
                            payload: dict[str, Any]) -> str:
    ingest = CenterIngest(center, verifier(keys), MqttConfig())
    assert await ingest.handle(TOPIC, resigned(keys, payload)) == "quarantined"
    assert ingest.quarantined_by_kind == {"malformed": 1}
    with center.session() as session:
        return session.scalars(select(QuarantinedPayload.reason)).one()


def without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


@pytest.mark.parametrize(("change", "reason"), [
    (lambda e: without(e, "stan"), "tx-event.v1: data must contain ['stan'] properties"),
    (lambda e: without(e, "pan_token"),
     "tx-event.v1: data must contain ['pan_token'] properties"),
    (lambda e: {**e, "amount_minor": "1250"}, "tx-event.v1: data.amount_minor must be integer"),
    (lambda e: {**e, "seq": True}, "tx-event.v1: data.seq must be integer"),
    (lambda e: {**e, "terminal_id": 42}, "tx-event.v1: data.terminal_id must be string"),
    (lambda e: {**e, "rrn": 1}, "tx-event.v1: data.rrn must be string or null"),
    (lambda e: {**e, "merchant_id": None}, "tx-event.v1: data.merchant_id must be string"),
    (lambda e: {**e, "terminal_id": "T" * 17},
     "tx-event.v1: data.terminal_id must be shorter than or equal to 16 characters"),
    (lambda e: {**e, "occurred_at": e["occurred_at"].replace("Z", "0" * 40 + "Z")},
     "tx-event.v1: data.occurred_at must be shorter than or equal to 40 characters"),
    (lambda e: {**e, "pan_masked": "476173**********0010"},
     "tx-event.v1: data.pan_masked must be shorter than or equal to 19 characters"),
    (lambda e: {**e, "status": "approved"},
     "tx-event.v1: data.status must be one of ['settled', 'frozen', 'reversed', 'voided', "
     "'refund', 'declined']"),
    (lambda e: {**e, "amount_minor": -1},
     "tx-event.v1: data.amount_minor must be bigger than or equal to 0"),
])
async def test_a_tx_event_that_breaks_its_schema_is_quarantined_with_the_validators_message(
        sqlite_center: CenterStore, keys: GatewayKeys, change: Any, reason: str) -> None:
    assert await quarantine_reason(sqlite_center, keys, change(signed_event(keys, 1))) == reason


async def test_an_extra_field_is_refused_and_its_digits_are_not_quoted(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    leaky = {**signed_event(keys, 1), "4761739001010010": "pan as a key"}
    reason = await quarantine_reason(sqlite_center, keys, leaky)
    assert reason.startswith("tx-event.v1: data must not contain ")
    assert "4761739001010010" not in reason and "[digits]" in reason


async def test_a_schema_the_ingest_does_not_store_is_refused(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    reason = await quarantine_reason(sqlite_center, keys,
                                     {**signed_event(keys, 1), "schema": "case.v1"})
    assert reason == "schema is not one of reconciliation.v1, tx-event.v1"


async def test_a_reconciliation_report_with_a_wrong_total_is_quarantined(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    event = signed_event(keys, 1)
    report = {**{k: event[k] for k in ("event_id", "branch_id", "gateway_id", "seq",
                                       "occurred_at", "terminal_id")},
              "schema": "reconciliation.v1", "outcome": "matched", "batch_opened_at": None,
              "batch_closed_at": event["occurred_at"], "terminal_totals": {"debits": "1"},
              "ledger_totals": {}, "differences": {}, "missing_at_gateway": {},
              "missing_at_terminal": {}, "amount_differences": {}}
    reason = await quarantine_reason(sqlite_center, keys, report)
    assert reason == "reconciliation.v1: data.terminal_totals.debits must be integer"


def test_every_contract_schema_compiles_and_a_valid_event_passes(keys: GatewayKeys) -> None:
    assert set(compiled_schemas()) == set(SCHEMA_NAMES)
    assert check_against_schema(signed_event(keys, 1), ("tx-event.v1",)) == "tx-event.v1"


def test_a_command_reply_is_checked_against_its_own_schema() -> None:
    with pytest.raises(BadPayload, match=r"command-reply\.v1: data must contain"):
        check_against_schema({"schema": "command-reply.v1"}, ("command-reply.v1",))
