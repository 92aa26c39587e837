"""The center tells each gateway, signed, what it stored or refused, after the commit.

Real broker (the shared one, on private topics), real SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from posgw.center.confirmations import ConfirmationBook
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest, Received
from posgw.center.models import ReceivedEvent
from posgw.gateway.security import GatewayKeys
from tests.center.confirms import confirmations, verified
from tests.center.events import resigned, signed_event, verifier, wire
from tests.center.test_ingest import count, private_topics, publish, running_centers
from tests.store.pg import scratch_database

CENTER_KEY = Ed25519PrivateKey.generate()
TOPIC = "pos/v1/B001/T0001/tx"





def event_id(n: int) -> str:
    return f"ev-B001-T0001-{n}"


async def test_new_and_redelivered_events_are_confirmed_once_committed(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    mqtt = private_topics()
    ingest = CenterIngest(sqlite_center, verifier(keys), mqtt, command_key=CENTER_KEY)
    async with (confirmations(mqtt, CENTER_KEY.public_key()) as inbox,
                running_centers(ingest)):
        await publish(mqtt, [wire(signed_event(keys, n)) for n in (1, 2)])
        await inbox.until(lambda box: len(box.stored()) >= 2)
        assert count(sqlite_center, ReceivedEvent) == 2  # committed before confirmed
        await publish(mqtt, [wire(signed_event(keys, 1))])  # the gateway never heard: again
        await inbox.until(lambda box: len(box.stored()) >= 3)
    assert sorted(inbox.stored()) == [event_id(1), event_id(1), event_id(2)]
    assert (ingest.ingested, ingest.duplicates) == (2, 1)
    assert {(m["branch_id"], m["gateway_id"]) for m in inbox.received} == {("B001", "gw-1")}


async def test_only_a_verified_payload_is_confirmed_as_quarantined(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    mqtt = private_topics()
    ingest = CenterIngest(sqlite_center, verifier(keys), mqtt, command_key=CENTER_KEY)
    stale_at = (datetime.now(UTC) - timedelta(days=90)).isoformat().replace("+00:00", "Z")
    stale = resigned(keys, {**signed_event(keys, 1), "occurred_at": stale_at})
    forged = wire({**signed_event(keys, 2), "amount_minor": 1})  # signature no longer matches
    async with (confirmations(mqtt, CENTER_KEY.public_key()) as inbox,
                running_centers(ingest)):
        # In order from one publisher: once event 3 is confirmed, 1 and 2 were handled.
        await publish(mqtt, [stale, forged, wire(signed_event(keys, 3))])
        await inbox.until(lambda box: event_id(3) in box.stored())
    assert inbox.quarantined() == {
        event_id(1): "occurred_at is older than 30 days (max_event_age_s)"}
    named = set(inbox.stored()) | set(inbox.quarantined())
    assert event_id(2) not in named  # a forger cannot make the gateway forget event 2
    assert ingest.quarantined_by_kind == {"stale": 1, "bad_signature": 1}


async def test_without_a_command_key_nothing_is_confirmed(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(sqlite_center, verifier(keys), private_topics())
    result = await ingest.handle_batch([Received(TOPIC, wire(signed_event(keys, 1)))])
    assert result.outcomes == ["ingested"] and result.confirmations == []


async def test_a_replayed_seq_makes_the_batch_fall_back_and_quarantines_only_the_replay(
        keys: GatewayKeys) -> None:
    replay = resigned(keys, {**signed_event(keys, 1), "event_id": "ev-replay"})
    batch = [Received(TOPIC, message) for message in (
        wire(signed_event(keys, 1)), wire(signed_event(keys, 2)), replay,
        wire(signed_event(keys, 3)), wire(signed_event(keys, 2)))]
    with scratch_database() as url:
        store = CenterStore(url)
        try:
            ingest = CenterIngest(store, verifier(keys), private_topics(),
                                  command_key=CENTER_KEY)
            result = await ingest.handle_batch(batch)
            assert count(store, ReceivedEvent) == 3
            with store.engine.connect() as conn:
                kinds = conn.execute(text("SELECT kind FROM center_quarantine")).scalars().all()
        finally:
            store.close()
    assert result.outcomes == ["ingested", "ingested", "quarantined", "ingested", "duplicate"]
    assert kinds == ["replay"]
    [confirm] = [verified(c.payload, CENTER_KEY.public_key()) for c in result.confirmations]
    assert confirm["stored"] == [event_id(1), event_id(2), event_id(3)]
    assert [item["event_id"] for item in confirm["quarantined"]] == ["ev-replay"]
    assert "seq 1 of gateway gw-1" in confirm["quarantined"][0]["reason"]


async def test_a_batch_is_stored_in_one_transaction_on_postgresql(keys: GatewayKeys) -> None:
    batch = [Received(TOPIC, wire(signed_event(keys, n))) for n in range(1, 51)]
    with scratch_database() as url:
        store = CenterStore(url)
        try:
            ingest = CenterIngest(store, verifier(keys), private_topics())
            result = await ingest.handle_batch(batch)
            again = await ingest.handle_batch(batch[:10])  # redelivered: no new rows
            with store.engine.connect() as conn:
                # xmin is the id of the transaction that wrote a row.
                writers = conn.execute(text(
                    "SELECT count(DISTINCT xmin::text) FROM center_events")).scalar()
                rows = conn.execute(text("SELECT count(*) FROM center_events")).scalar()
        finally:
            store.close()
    assert result.outcomes == ["ingested"] * 50
    assert again.outcomes == ["duplicate"] * 10
    assert (rows, writers) == (50, 1)


async def test_postgresql_events_are_partitioned_by_month_and_deduplicated_apart(
        keys: GatewayKeys) -> None:
    with scratch_database() as url:
        store = CenterStore(url)
        try:
            assert store.insert_event(TOPIC, signed_event(keys, 1))
            assert not store.insert_event(TOPIC, signed_event(keys, 1))
            with store.engine.connect() as conn:
                kind = conn.execute(text(
                    "SELECT relkind FROM pg_class WHERE relname = 'center_events'")).scalar()
                partitions = conn.execute(text(
                    "SELECT count(*) FROM pg_inherits "
                    "WHERE inhparent = 'center_events'::regclass")).scalar()
                ids = conn.execute(text("SELECT count(*) FROM center_event_ids")).scalar()
                index = conn.execute(text(
                    "SELECT indexdef FROM pg_indexes "
                    "WHERE indexname = 'ix_center_events_day_totals'")).scalar()
        finally:
            store.close()
    assert (kind, partitions, ids) == ("p", 1, 1)
    assert "(occurred_date, branch_id, terminal_id, currency)" in str(index)


def test_a_gateway_with_more_than_1000_outcomes_gets_several_confirmations() -> None:
    book = ConfirmationBook("pos/v1")
    for n in range(1500):
        book.stored({"branch_id": "B001", "gateway_id": "gw-1", "event_id": f"ev-{n}"})
    book.quarantined({"branch_id": "B001", "gateway_id": "gw-1", "event_id": "ev-bad"}, "stale")
    book.stored({"branch_id": "B001/#", "gateway_id": "gw-1", "event_id": "ev-x"})  # no topic
    messages = [verified(c.payload, CENTER_KEY.public_key())
                for c in book.signed(CENTER_KEY, datetime.now(UTC))]
    assert [len(m["stored"]) + len(m["quarantined"]) for m in messages] == [1000, 501]
    assert messages[1]["quarantined"] == [{"event_id": "ev-bad", "reason": "stale"}]
