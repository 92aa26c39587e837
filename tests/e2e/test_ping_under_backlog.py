"""A command is answered within a second while 100,000 events drain (issue 16).

After an outage a branch's gateway holds a day of sales; while it drains
them to the center, the center's `ping` (and a release, a decommission) must
not wait behind them. The real `posgw run` starts on a database holding
100,000 unconfirmed transaction events, the real `posgw center` stores them
as they come, and the center's signed ping is answered, measured from its
publish to the verified reply, while most of the backlog has yet to arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from posgw.center.command_key import PRIVATE_FILE, generate_command_key, load_command_key
from posgw.center.command_key import sign_command as center_sign
from posgw.center.commands import build_command
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.gateway.forward.events import outbox_row
from posgw.gateway.security.keys import PUBLIC_KEY_FILE, load_keys
from posgw.gateway.store import GroupCommitter, Store
from posgw.gateway.store.rows import TableRow
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import command_reply_topic, command_topic, tx_event, tx_topic
from posgw.protocols.normalize import EntryMode, Transaction, TxKind
from posgw.sandbox.ports import free_port
from tests.brokers import private_broker
from tests.center.processes import center_process
from tests.e2e.harness import BRANCH, GATEWAY_ID, config_table, topic_prefix, write_toml
from tests.e2e.test_broker_crash import center_config
from tests.e2e.test_gateway_killed import start_gateway

BACKLOG = 100_000
TERMINALS = 8
#: The center holds this many before the ping: the drain is under way.
DRAINING = 2_000
PING_DEADLINE_S = 1.0


@pytest.mark.e2e
async def test_a_ping_is_answered_within_a_second_while_100000_events_drain(
        tmp_path: Path) -> None:
    center_public = generate_command_key(tmp_path / "center-keys")
    with private_broker(tmp_path) as broker:
        table = config_table(tmp_path, broker.port, listen_port=free_port())
        table["keys"]["center_public_key"] = str(center_public)
        table["store"] = {"outbox_cap": 2 * BACKLOG}
        gateway_toml = write_toml(tmp_path / "gateway.toml", table)
        await fill_backlog(table, BACKLOG)
        center_toml = center_config(tmp_path, broker.port,
                                    center_public.with_name(PRIVATE_FILE), "center")
        with center_process(center_toml) as center:
            await asyncio.to_thread(center.wait_ready)
            gateway = start_gateway(gateway_toml, tmp_path / "gateway.log")
            try:
                await until_center_holds(tmp_path, DRAINING, gateway)
                waited_s, reply = await ping(tmp_path, broker.port)
                held_after = center_holds(tmp_path)
            finally:
                gateway.terminate()
                gateway.wait(30)
            center.stop()
    assert reply is not None and reply["outcome"] == "done"
    assert waited_s < PING_DEADLINE_S
    assert held_after < BACKLOG // 2  # answered while the backlog drained, not after it


async def fill_backlog(table: dict[str, Any], count: int) -> None:
    """`count` settled purchases in the gateway's outbox, sealed as the daemon
    seals them (seq stamped, signed), none published yet: an outage's worth."""
    keys = load_keys(table["keys"]["dir"])
    prefix = table["mqtt"]["topic_prefix"]
    store = Store(table["gateway"]["database"])
    try:
        async with GroupCommitter(store, outbox_cap=2 * count,
                                  seal=keys.signer.seal) as committer:
            for start in range(0, count, 10_000):
                await asyncio.gather(*(committer.commit(None, purchase(prefix, n))
                                       for n in range(start, min(start + 10_000, count))))
    finally:
        store.close()


def purchase(prefix: str, n: int) -> TableRow:
    terminal = f"T{n % TERMINALS:04d}"
    tx = Transaction(kind=TxKind.PURCHASE, mti="0210", version=1987, amount_minor=100 + n,
                     currency="EUR", pan_masked="476173******0010", stan=f"{n % 1_000_000:06d}",
                     rrn=f"{n:012d}", auth_code="A1B2C3", response_code="00",
                     entry_mode=EntryMode.CHIP, terminal_id=terminal, merchant_id="M0001")
    payload = tx_event(tx, status="settled", event_id=f"ev-backlog-{n}", branch_id=BRANCH,
                       gateway_id=GATEWAY_ID, pan_token="ab" * 16, risk=[],
                       occurred_at=datetime.now(UTC))
    return outbox_row(payload, topic=tx_topic(prefix, BRANCH, terminal), clock=SYSTEM_CLOCK,
                      terminal_id=terminal)


def center_holds(workdir: Path) -> int:
    with contextlib.closing(sqlite3.connect(workdir / "center.db")) as db:
        return int(db.execute("SELECT count(*) FROM center_events").fetchone()[0])


async def until_center_holds(workdir: Path, count: int, gateway: subprocess.Popen[bytes]
                             ) -> None:
    deadline = SYSTEM_CLOCK.monotonic() + 60
    while await asyncio.to_thread(center_holds, workdir) < count:
        assert gateway.poll() is None, (workdir / "gateway.log").read_text()
        assert SYSTEM_CLOCK.monotonic() < deadline, "the drain did not start"
        await asyncio.sleep(0.05)


async def ping(workdir: Path, port: int) -> tuple[float, dict[str, Any] | None]:
    """The center's signed ping from a connected client, as the center's tools
    keep one: seconds from its publish to the gateway's verified reply."""
    key = load_command_key(workdir / "center-keys" / PRIVATE_FILE)
    command = center_sign(build_command(BRANCH, "ping", ()), key)
    prefix = topic_prefix(workdir)
    verifier = SignatureVerifier({GATEWAY_ID: load_public_key(workdir / "keys" / PUBLIC_KEY_FILE)})
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(command_reply_topic(prefix, BRANCH), qos=1)
        started = time.perf_counter()
        await client.publish(command_topic(prefix, BRANCH), canonical_json(command), qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                reply = json.loads(message.payload)
                if reply.get("command_id") == command["command_id"]:
                    verifier.verify(reply)
                    return time.perf_counter() - started, reply
    return time.perf_counter() - started, None
