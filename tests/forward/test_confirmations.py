"""An event is done only when the center confirmed it (confirm.v1), against a real broker.

The confirmations are made as the center makes them: the contract's
`confirmation` payload, signed by `sign_command` with a key from
`generate_command_key`, published QoS 1 on the gateway's confirm topic.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from posgw.center.command_key import PRIVATE_FILE, generate_command_key, load_command_key
from posgw.gateway.security import GatewayKeys
from posgw.gateway.store import GroupCommitter, OutboxEvent, OutboxFull, Store
from posgw.protocols.contract import command_reply_topic
from tests.brokers import private_mosquitto
from tests.forward.collector import Collector
from tests.forward.confirming import (
    Branch,
    commit_tx,
    event_ids,
    eventually,
    running_forwarder,
)
from tests.store.rows import outbox


async def test_published_events_wait_for_the_center_and_a_confirmation_finishes_them(
        store: Store, keys: GatewayKeys, center_key: tuple[Path, Ed25519PrivateKey]) -> None:
    branch, (public, private) = Branch(), center_key
    collector = Collector(branch.port, branch.tx("+"), f"sub-{branch.id}")
    await commit_tx(store, branch, 20)
    gateway = branch.forwarder(store, keys, public)
    async with asyncio.TaskGroup() as group:
        listening = group.create_task(collector.run())
        await collector.subscribed.wait()
        forwarding = await running_forwarder(gateway, group)
        await collector.wait_for(20)
        await eventually(lambda: store.outbox_stats().published == 20)
        assert store.outbox_stats().depth == 20  # the broker has them, the center not yet
        await branch.confirm(private, event_ids(20))
        # The counter moves after the store has committed: waiting on it covers both.
        await eventually(lambda: gateway.confirmed_total == 20)
        forwarding.cancel()
        listening.cancel()
    assert store.outbox_stats().depth == 0


async def test_an_unconfirmed_event_is_published_again_with_the_same_bytes(
        store: Store, keys: GatewayKeys, center_key: tuple[Path, Ed25519PrivateKey]) -> None:
    branch, (public, private) = Branch(), center_key
    collector = Collector(branch.port, branch.tx("+"), f"sub-{branch.id}")
    await commit_tx(store, branch, 3)
    gateway = branch.forwarder(store, keys, public, confirm_timeout_s=0.3)
    async with asyncio.TaskGroup() as group:
        listening = group.create_task(collector.run())
        await collector.subscribed.wait()
        forwarding = await running_forwarder(gateway, group)
        payloads = await collector.wait_for(6)  # each of the 3, then each again
        await branch.confirm(private, event_ids(3))
        await eventually(lambda: store.outbox_stats().depth == 0)
        forwarding.cancel()
        listening.cancel()
    first, again = payloads[:3], payloads[3:6]
    assert again == first  # same event_id, seq, signature: the same signed bytes
    assert [p["seq"] for p in first] == sorted(p["seq"] for p in first)
    assert gateway.republished_total >= 3


async def test_a_forged_confirmation_changes_nothing_and_is_logged_once(
        store: Store, keys: GatewayKeys, center_key: tuple[Path, Ed25519PrivateKey],
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    branch, (public, private) = Branch(), center_key
    generate_command_key(tmp_path / "rogue")
    rogue = load_command_key(tmp_path / "rogue" / PRIVATE_FILE)
    await commit_tx(store, branch, 5)
    gateway = branch.forwarder(store, keys, public)
    caplog.set_level(logging.WARNING, logger="posgw.gateway.forward")
    async with asyncio.TaskGroup() as group:
        forwarding = await running_forwarder(gateway, group)
        await eventually(lambda: store.outbox_stats().published == 5)
        await branch.confirm(rogue, event_ids(5))
        await branch.confirm(rogue, event_ids(5))
        await eventually(lambda: gateway.confirmations_refused == 2)
        assert store.outbox_stats().depth == 5  # nothing forgotten
        # The genuine one, after the forged ones on the same topic, still works.
        await branch.confirm(private, event_ids(1))
        await eventually(lambda: store.outbox_stats().depth == 4)
        forwarding.cancel()
    refusals = [r for r in caplog.records if "confirmation ignored" in r.getMessage()]
    assert len(refusals) == 1 and "does not verify" in refusals[0].getMessage()


async def test_a_confirmation_for_an_unknown_event_id_is_ignored(
        store: Store, keys: GatewayKeys, center_key: tuple[Path, Ed25519PrivateKey]) -> None:
    branch, (public, private) = Branch(), center_key
    await commit_tx(store, branch, 2)
    gateway = branch.forwarder(store, keys, public)
    async with asyncio.TaskGroup() as group:
        forwarding = await running_forwarder(gateway, group)
        await eventually(lambda: store.outbox_stats().published == 2)
        await branch.confirm(private, ["ev-not-ours", "ev-T0001-0"])
        await eventually(lambda: gateway.confirmed_total == 1)
        forwarding.cancel()
    assert store.outbox_stats().depth == 1
    assert [row.event_id for row in store.due_for_republish(datetime.now(UTC), 10)] == [
        "ev-T0001-1"]


async def test_a_quarantined_event_is_not_sent_again_and_keeps_the_reason(
        store: Store, keys: GatewayKeys, center_key: tuple[Path, Ed25519PrivateKey],
        caplog: pytest.LogCaptureFixture) -> None:
    branch, (public, private) = Branch(), center_key
    collector = Collector(branch.port, branch.tx("+"), f"sub-{branch.id}")
    await commit_tx(store, branch, 2)
    gateway = branch.forwarder(store, keys, public, confirm_timeout_s=1.0)
    caplog.set_level(logging.WARNING, logger="posgw.gateway.forward")
    async with asyncio.TaskGroup() as group:
        listening = group.create_task(collector.run())
        await collector.subscribed.wait()
        forwarding = await running_forwarder(gateway, group)
        await eventually(lambda: store.outbox_stats().published == 2)
        await branch.confirm(private, [], {"ev-T0001-0": "seq 7 replayed"})
        await eventually(lambda: store.outbox_stats().depth == 1)
        # ev-T0001-1 stays unconfirmed: republished twice, while ev-T0001-0 never is.
        await eventually(lambda: sum(p["event_id"] == "ev-T0001-1"
                                     for p in collector.payloads) >= 3)
        forwarding.cancel()
        listening.cancel()
    assert [p["event_id"] for p in collector.payloads].count("ev-T0001-0") == 1
    with store.session() as session:
        row = session.scalars(select(OutboxEvent).where(
            OutboxEvent.event_id == "ev-T0001-0")).one()  # type: ignore[arg-type]
    assert row.delivered_at is not None and row.quarantine_reason == "seq 7 replayed"
    assert any("quarantined event ev-T0001-0: seq 7 replayed" in r.getMessage()
               for r in caplog.records)


async def test_without_a_center_key_the_puback_finishes_an_event_as_before(
        store: Store, keys: GatewayKeys) -> None:
    branch = Branch()
    await commit_tx(store, branch, 4)
    gateway = branch.forwarder(store, keys, None)
    async with asyncio.TaskGroup() as group:
        forwarding = await running_forwarder(gateway, group)
        await eventually(lambda: store.outbox_stats().depth == 0)
        forwarding.cancel()
    assert not gateway.confirming and gateway.delivered_total >= 4


async def test_the_outbox_cap_counts_published_events_until_confirmed(store: Store) -> None:
    async with GroupCommitter(store, outbox_cap=3) as committer:
        for n in range(3):
            await committer.commit(None, outbox(n))
        store.mark_published([1, 2, 3], datetime.now(UTC))  # the broker has them all
        with pytest.raises(OutboxFull):
            await committer.commit(None, outbox(3))
        assert store.confirm(["ev-T0001-0"], {}, datetime.now(UTC)) == 1
        assert await committer.commit(None, outbox(3)) == 4


async def test_a_command_reply_goes_out_ahead_of_a_5000_event_backlog(
        store: Store, keys: GatewayKeys, center_key: tuple[Path, Ed25519PrivateKey],
        tmp_path: Path) -> None:
    # A private broker: the shared one's default max_queued_messages (1000)
    # would drop part of a 5,000-message burst to the test's subscriber.
    with private_mosquitto(tmp_path) as broker:
        await reply_ahead_of_backlog(store, keys, Branch(broker.port), center_key[0])


async def reply_ahead_of_backlog(store: Store, keys: GatewayKeys, branch: Branch,
                                 public: Path) -> None:
    backlog = 5000
    await commit_tx(store, branch, backlog)  # an outage's worth of sales
    reply_topic = command_reply_topic("pos/v1", branch.id)
    async with GroupCommitter(store) as committer:
        await committer.commit(None, OutboxEvent(
            event_id="ev-reply", topic=reply_topic, payload={"event_id": "ev-reply"},
            created_at=datetime.now(UTC)))
    collector = Collector(branch.port, f"pos/v1/{branch.id}/#", f"sub-{branch.id}")
    async with asyncio.TaskGroup() as group:
        listening = group.create_task(collector.run())
        await collector.subscribed.wait()
        forwarding = await running_forwarder(branch.forwarder(store, keys, public), group)
        payloads = await collector.wait_for(backlog + 2, timeout=60)  # + the birth
        forwarding.cancel()
        listening.cancel()
    arrival = [p["event_id"] for p in payloads
               if p["event_id"] == "ev-reply" or p["event_id"].startswith("ev-T0001-")]
    tx_before_reply = arrival.index("ev-reply")
    assert tx_before_reply < 600  # the first table read (512 rows), not the whole backlog
    tx_seqs = [p["seq"] for p in payloads if p["event_id"].startswith("ev-T0001-")]
    assert tx_seqs == sorted(tx_seqs) and len(tx_seqs) == backlog  # order per topic holds


async def test_a_command_reply_is_done_at_its_puback_since_the_center_confirms_only_tx(
        store: Store, keys: GatewayKeys, center_key: tuple[Path, Ed25519PrivateKey]) -> None:
    branch = Branch()
    await commit_tx(store, branch, 1)
    async with GroupCommitter(store) as committer:
        await committer.commit(None, OutboxEvent(
            event_id="ev-reply", topic=command_reply_topic("pos/v1", branch.id),
            payload={"event_id": "ev-reply"}, created_at=datetime.now(UTC)))
    gateway = branch.forwarder(store, keys, center_key[0])
    async with asyncio.TaskGroup() as group:
        forwarding = await running_forwarder(gateway, group)
        await eventually(lambda: store.outbox_stats().published == 1)
        await eventually(lambda: store.outbox_stats().depth == 1)
        forwarding.cancel()
    assert [row.event_id for row in store.due_for_republish(datetime.now(UTC), 10)] == [
        "ev-T0001-0"]
