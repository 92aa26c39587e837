"""The reference center: verification, idempotent ingest, queries, shared subscription."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
from sqlalchemy import func, select

from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.models import QuarantinedPayload, ReceivedEvent
from posgw.center.queries import by_card_amount_day, by_rrn, by_terminal_stan, daily_totals
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security import GatewayKeys
from tests.brokers import shared_broker_port
from tests.center.events import DAY, TX_TOPIC, signed_event, verifier, wire
from tests.center.processes import SESSION_EXPIRY_S
from tests.store.pg import scratch_database


def private_topics() -> MqttConfig:
    tag = uuid.uuid4().hex[:8]  # keeps tests on the shared broker apart
    return MqttConfig(port=shared_broker_port(), topic_prefix=f"t{tag}/v1", share_group=tag,
                      client_id=f"center-{tag}", session_expiry_s=SESSION_EXPIRY_S)


@asynccontextmanager
async def running_centers(*ingests: CenterIngest) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(ingest.run()) for ingest in ingests]
        try:
            for ingest in ingests:
                await asyncio.wait_for(ingest.subscribed.wait(), 10)
            yield
        finally:
            for task in tasks:
                task.cancel()


async def publish(mqtt: MqttConfig, messages: list[bytes], terminal: str = "T0001") -> None:
    async with aiomqtt.Client(mqtt.host, mqtt.port,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        for message in messages:
            await client.publish(f"{mqtt.topic_prefix}/B001/{terminal}/tx", message, qos=1)


async def handled(ingests: tuple[CenterIngest, ...], count: int) -> None:
    async with asyncio.timeout(15):
        while sum(i.ingested + i.duplicates + i.quarantined for i in ingests) < count:
            await asyncio.sleep(0.02)  # polling counters with a deadline


def count(store: CenterStore, model: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


async def test_each_event_is_stored_once_even_when_published_twice(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    mqtt = private_topics()
    ingest = CenterIngest(sqlite_center, verifier(keys), mqtt)
    events = [wire(signed_event(keys, n)) for n in range(1, 11)]
    async with running_centers(ingest):
        await publish(mqtt, events + events[:5])
        await handled((ingest,), 15)
    assert (ingest.ingested, ingest.duplicates) == (10, 5)
    assert count(sqlite_center, ReceivedEvent) == 10


async def test_a_bad_signature_is_quarantined_with_its_reason(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    mqtt = private_topics()
    ingest = CenterIngest(sqlite_center, verifier(keys), mqtt)
    tampered = {**signed_event(keys, 1), "amount_minor": 1}
    async with running_centers(ingest):
        await publish(mqtt, [wire(tampered), b"not json"])
        await handled((ingest,), 2)
    assert count(sqlite_center, ReceivedEvent) == 0
    with sqlite_center.session() as session:
        reasons = sorted(row.reason for row in session.scalars(select(QuarantinedPayload)))
    assert reasons == ["bad signature", "not JSON"]


async def test_an_unregistered_gateway_is_quarantined_even_with_a_valid_signature(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(sqlite_center, verifier(keys), MqttConfig())
    stranger = keys.signer.sign({**signed_event(keys, 1), "gateway_id": "gw-stranger"})
    assert await ingest.handle("pos/v1/B001/T0001/tx", wire(stranger)) == "quarantined"
    assert count(sqlite_center, ReceivedEvent) == 0
    with sqlite_center.session() as session:
        reason = session.scalars(select(QuarantinedPayload.reason)).one()
    assert reason == ("unknown gateway_id 'gw-stranger': not registered (center.toml "
                      "[[gateways]] or `posgw center gateways register`)")
    assert ingest.quarantined_by_kind == {"unregistered": 1}


async def test_a_quarantined_payload_is_kept_without_a_card_number_in_clear(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(sqlite_center, verifier(keys), MqttConfig())
    leaky = {**signed_event(keys, 1), "pan_masked": "4761739001010010"}  # broken sender
    assert await ingest.handle("pos/v1/B001/T0001/tx", wire(leaky)) == "quarantined"
    with sqlite_center.session() as session:
        text = session.scalars(select(QuarantinedPayload.payload_text)).one()
    assert "4761739001010010" not in text and "476173******0010" in text


async def test_queries_find_a_payment_three_ways_and_total_the_day(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    await _ingest_directly(sqlite_center, keys)
    _check_queries(sqlite_center)


async def test_center_on_postgresql_is_idempotent_and_answers_queries(keys: GatewayKeys) -> None:
    with scratch_database() as url:
        store = CenterStore(url)
        try:
            await _ingest_directly(store, keys)
            _check_queries(store)
        finally:
            store.close()


async def test_two_subscribers_on_one_shared_subscription_store_each_event_once(
        tmp_path: Path, keys: GatewayKeys) -> None:
    mqtt = private_topics()
    stores = [CenterStore(f"sqlite:///{tmp_path / 'center.db'}") for _ in range(2)]
    ingests = tuple(CenterIngest(store, verifier(keys),
                                 replace(mqtt, client_id=f"{mqtt.client_id}-{n}"))
                    for n, store in enumerate(stores))
    try:
        async with running_centers(*ingests):
            await publish(mqtt, [wire(signed_event(keys, n)) for n in range(1, 41)])
            await handled(ingests, 40)
        assert count(stores[0], ReceivedEvent) == 40
        assert all(ingest.ingested > 0 for ingest in ingests)  # the stream was split
        assert sum(ingest.ingested for ingest in ingests) == 40
    finally:
        for store in stores:
            store.close()


async def _ingest_directly(store: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(store, verifier(keys), MqttConfig())
    outcomes = [await ingest.handle("pos/v1/B001/T0001/tx", wire(signed_event(keys, n)))
                for n in (1, 2, 2)]
    await ingest.handle("pos/v1/B001/T0002/tx",
                        wire(signed_event(keys, 3, terminal="T0002", amount=990)))
    assert outcomes == ["ingested", "ingested", "duplicate"]


def _check_queries(store: CenterStore) -> None:
    with store.session() as session:
        assert [e.stan for e in by_rrn(session, "000000000002")] == ["000002"]
        assert [e.rrn for e in by_terminal_stan(session, "T0002", "000003")] == ["000000000003"]
        found = by_card_amount_day(session, "0010", 1250, DAY.date())
        assert sorted(e.stan for e in found) == ["000001", "000002"]
        assert by_card_amount_day(session, "0010", 1250, DAY.date() + timedelta(days=1)) == []
        totals = daily_totals(session, DAY.date())
    assert [(t.terminal_id, t.count, t.amount_minor) for t in totals] == [
        ("T0001", 2, 2500), ("T0002", 1, 990)]


def _reasons(store: CenterStore) -> list[str]:
    with store.session() as session:
        return [row.reason for row in session.scalars(select(QuarantinedPayload))]


def _resigned(keys: GatewayKeys, payload: dict[str, object]) -> bytes:
    unsigned = {k: v for k, v in payload.items() if k != "signature"}
    return wire(keys.signer.sign(unsigned))


async def test_a_second_event_under_an_already_seen_seq_is_quarantined_as_a_replay(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(sqlite_center, verifier(keys), private_topics())
    original = signed_event(keys, 7)
    replay = _resigned(keys, {**original, "event_id": "ev-other", "amount_minor": 99_999})
    outcomes = [await ingest.handle(TX_TOPIC, raw)
                for raw in (wire(original), replay, wire(original))]
    assert outcomes == ["ingested", "quarantined", "duplicate"]
    assert count(sqlite_center, ReceivedEvent) == 1
    assert "seq 7 of gateway" in _reasons(sqlite_center)[0]


async def test_times_outside_the_tolerance_are_quarantined(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(sqlite_center, verifier(keys), private_topics())
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    stale = (datetime.now(UTC) - timedelta(days=90)).isoformat().replace("+00:00", "Z")
    for n, moment in ((1, future), (2, stale), (3, "yesterday")):
        event = _resigned(keys, {**signed_event(keys, n), "occurred_at": moment})
        assert await ingest.handle(TX_TOPIC, event) == "quarantined"
    reasons = _reasons(sqlite_center)
    assert reasons[0] == "occurred_at is more than 5 min in the future (max_clock_skew_s)"
    assert reasons[1] == "occurred_at is older than 30 days (max_event_age_s)"
    assert reasons[2] == "tx-event.v1: data.occurred_at must be date-time"
    assert count(sqlite_center, ReceivedEvent) == 0
    assert ingest.quarantined_by_kind == {"future": 1, "stale": 1, "malformed": 1}


async def test_the_tolerance_is_the_configured_one(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(sqlite_center, verifier(keys), private_topics(),
                          max_clock_skew=timedelta(seconds=30),
                          max_event_age=timedelta(days=1))
    now = datetime.now(UTC)
    times = [now + timedelta(minutes=1), now - timedelta(days=2), now - timedelta(hours=1)]
    outcomes = []
    for n, moment in enumerate(times, 1):
        text = moment.isoformat().replace("+00:00", "Z")
        outcomes.append(await ingest.handle(
            TX_TOPIC, _resigned(keys, {**signed_event(keys, n), "occurred_at": text})))
    assert outcomes == ["quarantined", "quarantined", "ingested"]
    assert _reasons(sqlite_center) == [
        "occurred_at is more than 30 s in the future (max_clock_skew_s)",
        "occurred_at is older than 1 day (max_event_age_s)"]
