"""A terminal retired while the broker is down: its last sales wait in the
outbox, so it stays DRAINING (refusing sales, still taking its refunds)
through heartbeat after heartbeat; when the broker is back its events are
delivered, it becomes DECOMMISSIONED, and the final statement published with
that status equals what the center holds for it: counts and sums by status,
open cases, frozen and still-unsettled amounts."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from posgw.center.commands import build_command, send_command
from posgw.center.db import CenterStore
from posgw.center.models import ReceivedEvent
from posgw.center.queries import RETURNED_STATUSES, terminal_days
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.mqtt import MqttConfig
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.daemon import Gateway
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from posgw.gateway.store import FreezeCase, OutboxEvent, Store
from posgw.protocols.canonical_json import canonical_json
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import mosquitto_path, private_mosquitto
from tests.drivers.helpers import wait_until
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    TCP_PROFILE,
    center_for,
    center_signed,
    gateway_config,
    ledger_rows,
    standin,
    topic_prefix,
    until_center_has,
)
from tests.e2e.test_commands import terminal_state

TERMINAL = "W0000001"


async def freeze(terminal: TerminalSimulator, pan: str) -> None:
    """Three swipes of one card within minutes: the third approval is frozen."""
    for step in range(3):
        assert (await terminal.purchase(pan, 20_00 + step)).approved


def open_case_ids(database: str) -> list[str]:
    with Store(database) as store, store.session() as session:
        return list(session.scalars(select(FreezeCase.id).where(FreezeCase.status == "open")
                                    .order_by(FreezeCase.opened_at)))  # type: ignore[arg-type]


async def after_heartbeats(store: Store, count: int) -> None:
    """Returns once the daemon has beaten `count` more times (each beat is when
    it would retire a drained terminal)."""
    beats: list[Any] = []

    def beaten() -> bool:
        runtime = store.runtime()
        at = runtime.heartbeat_at if runtime is not None else None
        if not beats or at != beats[-1]:
            beats.append(at)
        return len(beats) > count

    await wait_until(beaten, 30)


def published_statement(store: Store) -> dict[str, Any] | None:
    """The statement that went out with the retained `decommissioned` status,
    once the broker has acknowledged it."""
    with store.session() as session:
        for row in session.scalars(select(OutboxEvent).where(
                OutboxEvent.terminal_id == TERMINAL, OutboxEvent.delivered_at.is_not(None))):  # type: ignore[union-attr]
            if row.payload.get("state") == "decommissioned":
                return dict(row.payload["statement"])
    return None


def center_view(center: CenterStore) -> dict[str, Any]:
    """The center's own account of the terminal, from its events and its daily totals."""
    with center.session() as session:
        events = list(session.scalars(select(ReceivedEvent).where(
            ReceivedEvent.terminal_id == TERMINAL)))
        days = [day for text in sorted({e.occurred_date for e in events})
                for day in terminal_days(session, date.fromisoformat(text))
                if day.terminal_id == TERMINAL]
    by_status: dict[str, dict[str, int]] = {}
    for event in events:
        entry = by_status.setdefault(event.status, {"count": 0, "amount_minor": 0})
        entry["count"] += 1
        entry["amount_minor"] += event.amount_minor
    resolved = {e.payload.get("original_event_id") for e in events
                if e.status in ("settled", "refund") and e.payload.get("original_event_id")}
    unsettled = [e for e in events if e.status == "frozen" and e.event_id not in resolved]
    return {"transactions": by_status, "open_cases": len(unsettled),
            "held_amount_minor": sum(e.amount_minor for e in unsettled),
            "settled_minor": sum(d.settled_minor for d in days),
            "returned_minor": sum(d.returned_minor for d in days),
            "frozen_minor": sum(d.held_minor for d in days)}


@pytest.mark.e2e
async def test_a_terminal_retired_while_the_broker_is_down_drains_then_matches_the_center(
        tmp_path: Path) -> None:
    if mosquitto_path() is None:
        pytest.skip("needs mosquitto: the test stops and restarts its own broker with "
                    "persistent sessions, which the embedded broker does not keep")
    with private_mosquitto(tmp_path, persistent=True) as broker:
        config = gateway_config(tmp_path, broker.port, upstream=standin(refunds_for=TERMINAL))
        # A plain subscription: the restart below would drop a shared one (harness).
        center, ingest = center_for(tmp_path, broker.port)
        mqtt = MqttConfig("127.0.0.1", broker.port, topic_prefix=topic_prefix(tmp_path))
        verifier = SignatureVerifier(
            {GATEWAY_ID: load_public_key(tmp_path / "keys" / PUBLIC_KEY_FILE)})
        gateway, stop = Gateway(config), asyncio.Event()
        center_task = asyncio.create_task(ingest.run())
        run = asyncio.create_task(gateway.run(stop))
        try:
            await gateway.ready.wait()
            await ingest.subscribed.wait()
            assert gateway.forwarder is not None
            await gateway.forwarder.connected.wait()
            transport = await connect_tcp("127.0.0.1", gateway.listener_ports[0])
            async with TerminalSimulator(TCP_PROFILE, transport, TERMINAL, "M00000000000001",
                                         demo_cards(), response_timeout_s=5.0) as terminal:
                await freeze(terminal, demo.VISA_OK)
                await freeze(terminal, demo.UNIONPAY_OK)
                released = await send_command(mqtt, center_signed(tmp_path, build_command(
                    BRANCH, "release", [open_case_ids(config.database)[0]])),
                    wait_reply_s=15, verifier=verifier)
                assert released is not None and released["outcome"] == "done"
                await until_center_has(center, {r.event_id for r in ledger_rows(config.database)})
                # The center can hold an event before the gateway has its PUBACK:
                # stopped now, the broker would leave it pending and counted below.
                with Store(config.database) as store:
                    await wait_until(lambda: not store.pending_outbox(100), 30)

                await asyncio.to_thread(broker.stop)
                assert (await terminal.purchase(demo.VISA_LOW, 12_00)).approved
                assert (await terminal.purchase(demo.MASTERCARD_LIMITED, 99_00)).approved
                # The center cannot reach the daemon with the broker down; the
                # command is handed to the daemon's command handler, as its MQTT
                # client would hand it over (its reply waits in the outbox too).
                await gateway.forwarder.on_command(canonical_json(center_signed(
                    tmp_path, build_command(BRANCH, "decommission", [TERMINAL]))))
                assert (await terminal.purchase(demo.VISA_LOW, 13_00)).response_code == "58"
                assert (await terminal.refund(demo.VISA_LOW, 5_00)).approved

            with Store(config.database) as store:
                await after_heartbeats(store, 2)  # two chances to retire it, both declined
                waiting = [row for row in store.pending_outbox(100)
                           if row.terminal_id == TERMINAL and row.topic.endswith("/tx")]
                assert len(waiting) == 3  # the last two sales and the refund
                assert terminal_state(config.database, TERMINAL) == "draining"
                assert gateway.registry.state(TERMINAL) == "draining"

            await asyncio.to_thread(broker.start)
            await wait_until(lambda: terminal_state(config.database, TERMINAL)
                             == "decommissioned", 90)
            rows = [r for r in ledger_rows(config.database) if r.terminal_id == TERMINAL]
            await until_center_has(center, {row.event_id for row in rows}, 60)
            with Store(config.database) as store:
                await wait_until(lambda: published_statement(store) is not None, 30)
                statement = published_statement(store)
        finally:
            stop.set()
            await run
            center_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await center_task
    assert statement is not None
    at_center = center_view(center)
    center.close()
    # 6 sales before the outage (2 frozen) and 2 during it, 1 release, 1 refund.
    assert Counter(row.status for row in rows) == Counter(
        {"settled": 7, "frozen": 2, "refund": 1})
    assert statement["transactions"] == at_center["transactions"]
    assert statement["undelivered_events"] == 0
    assert (statement["open_cases"], statement["held_amount_minor"]) == (
        at_center["open_cases"], at_center["held_amount_minor"]) == (1, 20_02)
    transactions = statement["transactions"]
    assert transactions["settled"]["amount_minor"] == at_center["settled_minor"]
    assert transactions["frozen"]["amount_minor"] == at_center["frozen_minor"]
    assert sum(transactions.get(s, {}).get("amount_minor", 0) for s in RETURNED_STATUSES) == \
        at_center["returned_minor"]
