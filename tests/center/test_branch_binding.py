"""A gateway speaks only for its own branch (issue 17, finding 6).

The center stored an event signed by gw-b002-1 claiming branch B001: neither
the branch nor the topic was checked against the gateway's registration.
Now a gateway is registered with its branch ([[gateways]] branch_id, or
`gateways register --branch`), and an event is quarantined as `wrong_branch`
when it claims another branch or arrives on another branch's (or
terminal's) topic. Against a real `posgw center` process and broker.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.verify import SignatureVerifier
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from tests.brokers import shared_broker_port
from tests.center.events import GATEWAY_ID, resigned, signed_event, verifier, wire
from tests.center.processes import Topics, center_process, publish, write_config
from tests.center.stored import wait_stored
from tests.center.test_registration import _until_quarantined, posgw, quarantined

IMPOSTOR = "gw-b002-1"


def as_gateway(keys: GatewayKeys, gateway_id: str, n: int, **changes: Any) -> bytes:
    """Event n, claiming `gateway_id` (and `changes`), signed with `keys`."""
    payload = {**signed_event(keys, n, branch=changes.pop("branch", "B001")),
               "gateway_id": gateway_id, **changes}
    return resigned(keys, payload)


async def test_a_gateway_of_branch_b002_cannot_store_events_for_b001(tmp_path: Path) -> None:
    port, topics = shared_broker_port(), Topics.fresh()
    url = f"sqlite:///{tmp_path / 'center.db'}"
    generate_keys(tmp_path / "keys")  # gw-1, branch B001, from center.toml
    b002 = load_keys(generate_keys(tmp_path / "b002").parent)
    config = write_config(tmp_path / "center.toml", database=url, port=port, topics=topics,
                          client_id=f"{topics.group}-branch", keys_dir=tmp_path / "keys")
    registered = posgw(config, "gateways", "register", IMPOSTOR,
                       str(tmp_path / "b002" / "signing.pub"), "--branch", "B002")
    assert registered.exit_code == 0, registered.output
    with center_process(config) as center:
        await asyncio.to_thread(center.wait_ready)
        # Claims B001 on B001's topic: what the finding stored.
        await publish(port, topics.tx("B001"), [as_gateway(b002, IMPOSTOR, 1, branch="B001")])
        # Claims its own branch but is published on B001's topic.
        await publish(port, topics.tx("B001"), [as_gateway(b002, IMPOSTOR, 2, branch="B002")])
        await _until_quarantined(url, 2)
        await publish(port, topics.tx("B002"), [as_gateway(b002, IMPOSTOR, 3, branch="B002")])
        assert await wait_stored(url, 1) == ["ev-B002-T0001-3"]
        assert center.stop() == (1, 0, 2)
    store = CenterStore(url, create=False)
    try:
        assert quarantined(store) == [
            ("wrong_branch", "gateway 'gw-b002-1' is registered for branch B002, the payload "
                             "claims 'B001'"),
            ("wrong_branch", "published on branch B001 terminal T0001, not its own branch "
                             "and terminal")]
    finally:
        store.close()
    listed = posgw(config, "quarantine", "--json")
    assert json.loads(listed.stdout)["counts"] == {"wrong_branch": 2}


async def test_an_event_on_another_terminal_topic_is_quarantined(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(sqlite_center, verifier(keys, branch="B001"), MqttConfig())
    event = wire(signed_event(keys, 1, terminal="T0001"))
    assert await ingest.handle("pos/v1/B001/T0002/tx", event) == "quarantined"
    assert await ingest.handle("pos/v1/B001/T0001/tx", event) == "ingested"
    assert ingest.quarantined_by_kind == {"wrong_branch": 1}


async def test_a_gateway_with_no_branch_registered_is_refused(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    public = load_pem_public_key(keys.public_key_pem)
    assert isinstance(public, Ed25519PublicKey)
    unbound = SignatureVerifier({GATEWAY_ID: public}, branches={})
    ingest = CenterIngest(sqlite_center, unbound, MqttConfig())
    assert await ingest.handle("pos/v1/B001/T0001/tx",
                               wire(signed_event(keys, 1))) == "quarantined"
    assert ingest.quarantined_by_kind == {"wrong_branch": 1}
