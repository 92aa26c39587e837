"""The center stores gateways' reconciliation reports: verified, once per
event_id, in their own table, on SQLite and PostgreSQL; a broken or
replayed one is quarantined like any other payload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.models import QuarantinedPayload, ReceivedEvent, ReceivedReconciliation
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.pipeline import GatewayIdentity
from posgw.gateway.pipeline.settlement import settlement_rows
from posgw.gateway.security import GatewayKeys
from posgw.protocols.normalize.batch import BatchTotals
from tests.center.events import DAY, GATEWAY_ID, verifier, wire
from tests.store.pg import scratch_database

TOPIC = "pos/v1/B001/T0001/reconciliation"



@pytest.fixture(params=["sqlite", "postgresql"])
def center(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CenterStore]:
    if request.param == "sqlite":
        store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
        yield store
        store.close()
        return
    with scratch_database() as url:
        store = CenterStore(url)
        yield store
        store.close()


def report(keys: GatewayKeys, seq: int, **changes: Any) -> dict[str, Any]:
    """A signed report as the gateway builds it: the terminal counted one sale more."""
    _, outbox = settlement_rows(
        "T0001", BatchTotals(debits=2, debits_amount=30_00),
        BatchTotals(debits=1, debits_amount=10_00), opened_at=None, closed_at=DAY,
        identity=GatewayIdentity("B001", GATEWAY_ID, "pos/v1"), clock=SYSTEM_CLOCK)
    return keys.signer.sign({**outbox.values["payload"], "seq": seq, **changes})


def rows(center: CenterStore, model: type) -> list[Any]:
    with center.session() as session:
        return list(session.scalars(select(model)))


def count(center: CenterStore, model: type) -> int:
    with center.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_report_is_stored_once_apart_from_the_transactions(
        center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(center, verifier(keys), MqttConfig())
    payload = report(keys, 7)
    assert await ingest.handle(TOPIC, wire(payload)) == "ingested"
    assert await ingest.handle(TOPIC, wire(payload)) == "duplicate"  # a QoS 1 redelivery
    [stored] = rows(center, ReceivedReconciliation)
    assert (stored.terminal_id, stored.outcome, stored.seq) == ("T0001", "mismatched", 7)
    assert stored.payload["missing_at_gateway"] == {"debits": 1}
    assert stored.payload["amount_differences"] == {"debits": 20_00}
    assert count(center, ReceivedEvent) == count(center, QuarantinedPayload) == 0


async def test_a_broken_or_replayed_report_is_quarantined(
        center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(center, verifier(keys), MqttConfig())
    assert await ingest.handle(TOPIC, wire(report(keys, 1))) == "ingested"
    broken = report(keys, 2, outcome="balanced")
    missing = {key: value for key, value in report(keys, 3).items()
               if key != "missing_at_gateway"}
    replay = report(keys, 1)  # seq 1 again, under a new event_id
    for payload in (broken, keys.signer.sign(missing), replay):
        assert await ingest.handle(TOPIC, wire(payload)) == "quarantined"
    reasons = sorted(rows(center, QuarantinedPayload), key=lambda q: q.id)
    assert ["outcome" in reasons[0].reason, "missing_at_gateway" in reasons[1].reason,
            "seq 1" in reasons[2].reason] == [True, True, True]
    assert count(center, ReceivedReconciliation) == 1
