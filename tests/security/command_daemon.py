"""A real `posgw run` with the center's command key, and an attacker's
broker client on its `cmd` topic: the parts of the command attack tests.

The daemon runs as its own process (its log is the file it writes to
stderr), against a real broker; the attacker publishes raw bytes, or
commands signed with the center's key (`hq/command.key`, as `posgw center
cmd` would), and reads the replies on `cmd/reply`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from posgw.center.command_key import PRIVATE_FILE, load_command_key, sign_command
from posgw.drivers.mqtt import QOS_AT_LEAST_ONCE, MqttConfig, new_client
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.store import FreezeCase, LedgerEntry, OutboxEvent, Store
from posgw.protocols import contract
from posgw.protocols.canonical_json import canonical_json
from posgw.sandbox.ports import free_port, port_accepts
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.e2e.harness import (
    BRANCH,
    TCP_PROFILE,
    center_keys,
    config_table,
    wait_for,
    write_toml,
)
from tests.posgw_script import POSGW


@dataclass(frozen=True, slots=True)
class RunningGateway:
    config: Path
    database: str
    listen_port: int
    log: Path
    mqtt: MqttConfig

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def reply_rows(self) -> list[dict[str, Any]]:
        """The command replies this gateway stored to send (its outbox)."""
        query = select(OutboxEvent.payload).where(
            col(OutboxEvent.topic).endswith("/" + contract.TopicKind.COMMAND_REPLY))
        with Store(self.database) as store, store.session() as session:
            return list(session.scalars(query))

    def tx_statuses(self, terminal_id: str) -> list[str]:
        query = (select(LedgerEntry.status).where(LedgerEntry.terminal_id == terminal_id)
                 .order_by(LedgerEntry.id))  # type: ignore[arg-type]
        with Store(self.database) as store, store.session() as session:
            return list(session.scalars(query))

    def cases(self) -> list[FreezeCase]:
        with Store(self.database) as store, store.session() as session:
            return list(session.scalars(select(FreezeCase)))


def center_key_table(workdir: Path, broker_port: int, **store: Any) -> dict[str, Any]:
    """The harness's gateway config (with the center's command key), listening
    on a port of its own; `store` adds `[store]` keys."""
    table = config_table(workdir, broker_port, listen_port=free_port())
    if store:
        table["store"] = store
    return table


@contextmanager
def posgw_run(workdir: Path, table: dict[str, Any]) -> Iterator[RunningGateway]:
    """`posgw run -c` on `table` until the block ends (SIGTERM; exit 0 expected)."""
    config = write_toml(workdir / "gw.toml", table)
    log = workdir / "gw.log"
    listen = int(table["listeners"][0]["bind"].rpartition(":")[2])
    with log.open("wb") as out:
        daemon = subprocess.Popen([POSGW, "run", "-c", str(config)], stdout=out, stderr=out)
    try:
        wait_for(lambda: port_accepts(listen) or daemon.poll() is not None, "the listener")
        assert daemon.poll() is None, log.read_text()
        mqtt = table["mqtt"]
        yield RunningGateway(config, table["gateway"]["database"], listen, log,
                             MqttConfig("127.0.0.1", mqtt["port"],
                                        topic_prefix=mqtt["topic_prefix"]))
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, log.read_text()[-4000:]


def signed(workdir: Path, command: dict[str, Any]) -> dict[str, Any]:
    """`command` signed with the center's key, as `posgw center cmd` signs it."""
    return sign_command(command, load_command_key(center_keys(workdir) / PRIVATE_FILE))


def command(action: str, *, issued_at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    return contract.command(BRANCH, action, command_id=str(uuid.uuid4()),
                            issued_at=issued_at or datetime.now(UTC), **fields)


class Attacker:
    """A broker client on the branch's `cmd` topic that also reads `cmd/reply`."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._topic = contract.command_topic(prefix, BRANCH)
        self._replies: dict[str, dict[str, Any]] = {}

    async def publish(self, payload: bytes | dict[str, Any]) -> None:
        raw = canonical_json(payload) if isinstance(payload, dict) else payload
        await self._client.publish(self._topic, raw, qos=QOS_AT_LEAST_ONCE)

    async def flood(self, payloads: list[bytes], at_once: int = 500) -> None:
        for start in range(0, len(payloads), at_once):
            await asyncio.gather(*(self.publish(p) for p in payloads[start:start + at_once]))

    async def reply(self, command_id: str, timeout_s: float = 20.0) -> dict[str, Any] | None:
        """The reply to `command_id`, or None when none came in time."""
        try:
            async with asyncio.timeout(timeout_s):
                async for message in self._client.messages:
                    reply = json.loads(message.payload)
                    self._replies[reply["command_id"]] = reply
                    if command_id in self._replies:
                        break
        except TimeoutError:
            pass
        return self._replies.get(command_id)

    async def ask(self, payload: dict[str, Any], timeout_s: float = 20.0) -> dict[str, Any]:
        await self.publish(payload)
        reply = await self.reply(payload["command_id"], timeout_s)
        assert reply is not None, f"no reply to {payload['command']}"
        return reply


@asynccontextmanager
async def attacker(gateway: RunningGateway) -> AsyncIterator[Attacker]:
    """Connected and subscribed to the replies; the gateway is known to hear
    commands once a signed ping is answered (the caller checks that)."""
    async with new_client(gateway.mqtt, client_id=f"attacker-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(contract.command_reply_topic(gateway.mqtt.topic_prefix, BRANCH),
                               qos=QOS_AT_LEAST_ONCE)
        yield Attacker(client, gateway.mqtt.topic_prefix)


async def until_listening(workdir: Path, attacker: Attacker) -> dict[str, Any]:
    """A signed ping until one is answered: the daemon then hears commands."""
    for _ in range(30):
        ping = signed(workdir, command(contract.PING))
        await attacker.publish(ping)
        reply = await attacker.reply(ping["command_id"], timeout_s=2.0)
        if reply is not None:
            return reply
    raise AssertionError("the gateway never answered a signed ping")


async def frozen_case(gateway: RunningGateway, terminal_id: str) -> str:
    """Three sales of one card within a minute: the third is frozen; its case id."""
    transport = await connect_tcp("127.0.0.1", gateway.listen_port)
    async with TerminalSimulator(TCP_PROFILE, transport, terminal_id, "M00000000000001",
                                 demo_cards(), response_timeout_s=5.0) as terminal:
        for step in range(3):
            assert (await terminal.purchase(demo.VISA_OK, 30_00 + step)).approved
    [case] = [c for c in gateway.cases() if c.terminal_id == terminal_id]
    assert case.status == "open"
    return case.id


async def sells(gateway: RunningGateway, terminal_id: str, amount: int = 12_00) -> str | None:
    """One sale on `terminal_id`; its response code."""
    transport = await connect_tcp("127.0.0.1", gateway.listen_port)
    async with TerminalSimulator(TCP_PROFILE, transport, terminal_id, "M00000000000001",
                                 demo_cards(), response_timeout_s=5.0) as terminal:
        return (await terminal.purchase(demo.VISA_OK, amount)).response_code
