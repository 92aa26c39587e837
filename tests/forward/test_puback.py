"""PUBACK reason codes (MQTT 5 §3.4.2.1), from a real mosquitto.

A failure code (>= 0x80, here 0x87 "not authorized" from an ACL) is not a
publish: the row stays pending. 0x10 "no matching subscribers" is counted
as published, and with confirmations on the confirm timeout sends it again.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.gateway.forward.puback import NO_MATCHING_SUBSCRIBERS, PubackWatch
from posgw.gateway.security import GatewayKeys
from posgw.gateway.store import Store
from tests.brokers import mosquitto_path, private_broker
from tests.forward.confirming import Branch, commit_tx, eventually, running_forwarder

NOT_AUTHORIZED = 0x87


@pytest.fixture
def acl_broker(tmp_path: Path):
    """mosquitto whose ACL lets anonymous clients use every topic but `tx`."""
    if mosquitto_path() is None:
        pytest.skip("needs mosquitto (ACLs)")
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite pos/v1/+/gateway/status\n"
                   "topic readwrite pos/v1/+/+/confirm\ntopic readwrite free/#\n")
    with private_broker(tmp_path, listener_options=f"acl_file {acl}\n") as broker:
        yield broker


async def test_the_reason_code_of_each_puback_is_reported(acl_broker) -> None:
    async with aiomqtt.Client("127.0.0.1", acl_broker.port,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        watch = PubackWatch(client)
        nobody = await watch.publish("free/nobody-listens", b"x", retain=False)
        refused = await watch.publish("pos/v1/B001/T0001/tx", b"x", retain=False)
    assert (nobody, refused) == (NO_MATCHING_SUBSCRIBERS, NOT_AUTHORIZED)


async def test_a_refused_publish_leaves_the_row_pending(
        acl_broker, store: Store, keys: GatewayKeys,
        caplog: pytest.LogCaptureFixture) -> None:
    branch = Branch(acl_broker.port)
    await commit_tx(store, branch, 3)
    caplog.set_level(logging.WARNING, logger="posgw.gateway.forward")
    gateway = branch.forwarder(store, keys, None)  # even PUBACK-is-done mode: not a PUBACK
    async with asyncio.TaskGroup() as group:
        forwarding = await running_forwarder(gateway, group)
        await eventually(lambda: any("ev-T0001-0" in r.getMessage() and
                                     "PUBACK reason 0x87" in r.getMessage()
                                     for r in caplog.records))
        forwarding.cancel()
    stats = store.outbox_stats()
    assert (stats.depth, stats.published, gateway.delivered_total) == (3, 0, 0)


async def test_no_matching_subscribers_counts_as_published_and_the_timeout_sends_it_again(
        store: Store, keys: GatewayKeys, center_key: tuple[Path, Ed25519PrivateKey]) -> None:
    branch = Branch()  # nobody subscribes to this branch's topics: PUBACK 0x10
    await commit_tx(store, branch, 2)
    gateway = branch.forwarder(store, keys, center_key[0], confirm_timeout_s=0.3)
    async with asyncio.TaskGroup() as group:
        forwarding = await running_forwarder(gateway, group)
        await eventually(lambda: gateway.republished_total >= 2)
        forwarding.cancel()
    stats = store.outbox_stats()
    assert (stats.depth, stats.published) == (2, 2)  # published, never done
