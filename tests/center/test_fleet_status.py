"""The center keeps the latest status of each terminal and gateway (on SQLite
and PostgreSQL): the newest `occurred_at` wins, a decommissioned terminal
keeps its final statement, and a gateway's Last Will (signed when it
connected) marks it offline while an older connection's Will does not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from posgw.center.db import CenterStore
from posgw.center.fleet_status import WILL_SLACK, merged_gateway, parse_stamp, stamp
from posgw.center.ingest import CenterIngest
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security import GatewayKeys
from posgw.protocols.contract import gateway_status, terminal_status
from tests.center.events import GATEWAY_ID, resigned, verifier, wire

NOW = datetime.now(UTC).replace(microsecond=0)
STATEMENT = {"terminal_id": "T0001", "transactions": {"settled": {"count": 2,
                                                                  "amount_minor": 2500}},
             "open_cases": 0, "held_amount_minor": 0, "undelivered_events": 0}
TERMINAL_TOPIC = "pos/v1/B001/T0001/status"
GATEWAY_TOPIC = "pos/v1/B001/gateway/status"


def terminal(keys: GatewayKeys, seq: int, state: str, at: datetime,
             statement: dict[str, Any] | None = None) -> bytes:
    payload = terminal_status("T0001", state, profile="iso87-ascii", event_id=f"ts-{seq}",
                              branch_id="B001", gateway_id=GATEWAY_ID, occurred_at=at)
    if statement is not None:
        payload["statement"] = statement
    return wire(keys.signer.sign({**payload, "seq": seq, "driver": "tcp"}))


def gateway(keys: GatewayKeys, state: str, at: datetime, last_seq: int = 7) -> bytes:
    outbox = {"pending": 3, "published_unconfirmed": 2, "oldest_unconfirmed_age_s": 40,
              "center_silent": False} if state == "online" else None
    payload = gateway_status(state, last_seq=last_seq, event_id=f"gs-{state}-{at:%H%M%S}",
                             branch_id="B001", gateway_id=GATEWAY_ID, occurred_at=at,
                             outbox=outbox)
    return wire(keys.signer.sign(payload))


def terminal_row(store: CenterStore) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT state, profile, driver, statement, occurred_at "
                                "FROM center_terminal_status")).mappings().one()
    return dict(row)


def gateway_state(store: CenterStore) -> tuple[str, int, str | None]:
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT state, last_seq, offline_at "
                                "FROM center_gateway_status")).one()
    return str(row[0]), int(row[1]), row[2]


async def test_the_newest_terminal_status_wins_and_an_older_one_redelivered_does_not(
        store: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(store, verifier(keys), MqttConfig())
    assert await ingest.handle(TERMINAL_TOPIC, terminal(keys, 1, "online", NOW)) == "counted"
    await ingest.handle(TERMINAL_TOPIC, terminal(keys, 2, "offline", NOW + timedelta(minutes=1)))
    await ingest.handle(TERMINAL_TOPIC, terminal(keys, 1, "online", NOW))  # retained, again
    row = terminal_row(store)
    assert (row["state"], row["profile"], row["driver"]) == ("offline", "iso87-ascii", "tcp")
    assert row["occurred_at"] == stamp(NOW + timedelta(minutes=1))


async def test_a_decommissioned_terminal_keeps_its_final_statement(
        store: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(store, verifier(keys), MqttConfig())
    await ingest.handle(TERMINAL_TOPIC, terminal(keys, 1, "decommissioned", NOW, STATEMENT))
    await ingest.handle(TERMINAL_TOPIC, terminal(keys, 2, "offline", NOW + timedelta(hours=1)))
    row = terminal_row(store)
    assert row["state"] == "decommissioned"
    assert '"amount_minor": 2500' in row["statement"]


async def test_a_last_will_signed_at_connect_marks_the_gateway_offline(
        store: CenterStore, keys: GatewayKeys) -> None:
    """The Will is built before the birth of the same connection: older than it."""
    ingest = CenterIngest(store, verifier(keys), MqttConfig())
    will = gateway(keys, "offline", NOW)
    await ingest.handle(GATEWAY_TOPIC, gateway(keys, "online", NOW + timedelta(seconds=1)))
    await ingest.handle(GATEWAY_TOPIC, gateway(keys, "online", NOW + timedelta(hours=2), 40))
    assert gateway_state(store)[:2] == ("online", 40)
    assert await ingest.handle(GATEWAY_TOPIC, will) == "counted"
    state, last_seq, offline_at = gateway_state(store)
    assert (state, last_seq) == ("offline", 40) and offline_at is not None
    await ingest.handle(GATEWAY_TOPIC, gateway(keys, "online", NOW + timedelta(hours=1)))
    assert gateway_state(store)[0] == "offline"  # an older birth, redelivered
    await ingest.handle(GATEWAY_TOPIC, gateway(keys, "online", NOW + timedelta(hours=3), 41))
    assert gateway_state(store)[:2] == ("online", 41)


async def test_the_will_of_an_earlier_connection_arriving_late_is_ignored(
        store: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(store, verifier(keys), MqttConfig())
    await ingest.handle(GATEWAY_TOPIC, gateway(keys, "online", NOW))
    await ingest.handle(GATEWAY_TOPIC, gateway(keys, "offline", NOW - timedelta(hours=1)))
    assert gateway_state(store)[0] == "online"


async def test_a_signed_status_with_an_impossible_time_is_quarantined_not_a_crash(
        store: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(store, verifier(keys), MqttConfig())
    payload = json.loads(terminal(keys, 1, "online", NOW))
    payload["occurred_at"] = "0000-12-07T10:00:00Z"  # passes the schema's date-time pattern
    assert await ingest.handle(TERMINAL_TOPIC, resigned(keys, payload)) == "quarantined"
    assert ingest.quarantined_by_kind == {"malformed": 1}


def test_a_lowercase_z_is_utc_too() -> None:
    assert parse_stamp("2026-12-07T10:00:00z") == parse_stamp("2026-12-07T10:00:00Z")


def test_a_will_just_within_the_slack_of_the_birth_counts() -> None:
    birth = {"state": "online", "occurred_at": stamp(NOW), "online_since": stamp(NOW),
             "last_seq": 5, "received_at": stamp(NOW)}
    will = {"state": "offline", "occurred_at": stamp(NOW - WILL_SLACK), "last_seq": 5,
            "received_at": stamp(NOW + timedelta(hours=1))}
    merged = merged_gateway(birth, will)
    assert merged is not None and merged["state"] == "offline"
    assert merged_gateway(birth, {**will, "occurred_at": stamp(NOW - 2 * WILL_SLACK)}) is None
