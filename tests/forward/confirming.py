"""Helpers for the confirmation tests: a branch on a real broker, a center
that signs confirm.v1 as the real one does, and polling with a deadline."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.center.command_key import sign_command as center_sign
from posgw.drivers.backoff import Backoff
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.forward import OutboxForwarder
from posgw.gateway.forward.confirmations import ConfirmationReader
from posgw.gateway.security import GatewayKeys
from posgw.gateway.security.command_auth import CommandAuthenticator, load_center_public_key
from posgw.gateway.store import GroupCommitter, Store
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import confirm_topic, confirmation, tx_topic
from tests.brokers import shared_broker_port
from tests.store.rows import outbox

FAST_BACKOFF = Backoff(base=0.05, cap=0.2)


class Branch:
    """One gateway's identity on the shared broker (unique per test)."""

    def __init__(self, port: int | None = None) -> None:
        self.id = f"B{uuid.uuid4().hex[:8]}"
        self.gateway_id = f"gw-{self.id}"
        self.port = port or shared_broker_port()

    def tx(self, terminal: str = "T0001") -> str:
        return tx_topic("pos/v1", self.id, terminal)

    def forwarder(self, store: Store, keys: GatewayKeys, center_public: Path | None, *,
                  confirm_timeout_s: float = 60.0) -> OutboxForwarder:
        reader = None
        if center_public is not None:
            authenticator = CommandAuthenticator([load_center_public_key(center_public)],
                                                 what="confirmation")
            reader = ConfirmationReader(authenticator, branch_id=self.id,
                                        gateway_id=self.gateway_id)
        return OutboxForwarder(store, MqttConfig(port=self.port), keys.signer,
                               branch_id=self.id, gateway_id=self.gateway_id,
                               backoff=FAST_BACKOFF, connect_timeout_s=2.0,
                               confirmations=reader, confirm_timeout_s=confirm_timeout_s)

    async def confirm(self, key: Ed25519PrivateKey, stored: Sequence[str],
                      quarantined: Mapping[str, str] | None = None) -> None:
        """Publish a signed confirm.v1, as the center does after its commit."""
        payload = center_sign(confirmation(
            self.id, self.gateway_id, stored=stored, quarantined=quarantined or {},
            confirm_id=uuid.uuid4().hex, issued_at=datetime.now(UTC)), key)
        async with aiomqtt.Client("127.0.0.1", self.port,
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.publish(confirm_topic("pos/v1", self.id, self.gateway_id),
                                 canonical_json(payload), qos=1)


async def commit_tx(store: Store, branch: Branch, count: int, terminal: str = "T0001") -> None:
    async with GroupCommitter(store) as committer:
        await asyncio.gather(*(committer.commit(None, outbox(n, terminal=terminal,
                                                               topic=branch.tx(terminal)))
                               for n in range(count)))


async def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)  # polling state with a deadline


def event_ids(count: int, terminal: str = "T0001") -> list[str]:
    return [f"ev-{terminal}-{n}" for n in range(count)]


async def running_forwarder(forwarder: OutboxForwarder, group: asyncio.TaskGroup
                            ) -> asyncio.Task[None]:
    task = group.create_task(forwarder.run())
    await forwarder.connected.wait()
    return task


