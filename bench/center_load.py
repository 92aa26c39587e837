"""What bench/center.py feeds the center and reads back: signed events, a
PostgreSQL schema of its own, a pre-filled persistent session."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import psycopg

from posgw.gateway.security import GatewayKeys
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import tx_event, tx_topic
from posgw.protocols.normalize import EntryMode, Transaction, TxKind

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
GATEWAY_ID = "gw-bench-1"
BRANCH_ID = "B001"
TERMINALS = 8
PUBLISH_WINDOW = 64  # QoS 1 messages in flight while pre-publishing
# aiomqtt warns about every publish waiting beyond ten in flight: the point here.
QUIET = logging.getLogger("bench.center.mqtt")
QUIET.setLevel(logging.ERROR)
#: Yesterday 10:00 UTC: inside the center's accepted window.
DAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                       microsecond=0)


def signed_events(keys: GatewayKeys, count: int, tag: str) -> list[tuple[str, bytes]]:
    """(terminal, wire bytes) of `count` settled purchases signed by the gateway's key."""
    events = []
    for n in range(count):
        terminal = f"T{n % TERMINALS:04d}"
        tx = Transaction(kind=TxKind.PURCHASE, mti="0210", version=1987,
                         amount_minor=100 + n % 9000, currency="EUR",
                         pan_masked="476173******0010", stan=f"{n % 1_000_000:06d}",
                         rrn=f"{n:012d}", auth_code="A1B2C3", response_code="00",
                         entry_mode=EntryMode.CHIP, terminal_id=terminal, merchant_id="M0001")
        payload = tx_event(tx, status="settled", event_id=f"ev-{tag}-{n}", branch_id=BRANCH_ID,
                           gateway_id=GATEWAY_ID, pan_token="ab" * 16, risk=[],
                           occurred_at=DAY + timedelta(milliseconds=n))
        events.append((terminal, canonical_json(keys.signer.sign({**payload, "seq": n + 1}))))
    return events


async def publish(port: int, prefix: str, events: Sequence[tuple[str, bytes]]) -> None:
    """Every event, QoS 1, PUBACKed by the broker before this returns."""
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5,
                              max_inflight_messages=PUBLISH_WINDOW, logger=QUIET) as client:
        async def worker(start: int) -> None:
            for terminal, raw in events[start::PUBLISH_WINDOW]:
                await client.publish(tx_topic(prefix, BRANCH_ID, terminal), raw, qos=1)

        async with asyncio.TaskGroup() as group:
            for start in range(PUBLISH_WINDOW):
                group.create_task(worker(start))


@contextmanager
def scratch_schema() -> Iterator[str]:
    """A SQLAlchemy URL whose search_path is a new schema in database `test`;
    the schema is dropped afterwards."""
    name = f"posgw_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
        try:
            yield (PG_DSN.replace("postgresql://", "postgresql+psycopg://")
                   + f"?options=-csearch_path%3D{name}")
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def stored_count(url: str) -> int:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM center_events").fetchone()
    return int(row[0]) if row else 0


def center_toml(path: Path, *, database: str, port: int, prefix: str, public_key: Path,
                command_key: Path) -> Path:
    path.write_text(
        f'[center]\ndatabase = "{database}"\ncommand_key = "{command_key}"\n\n'
        f'[mqtt]\nport = {port}\ntopic_prefix = "{prefix}"\nshare_group = "bench"\n\n'
        f'[[gateways]]\nid = "{GATEWAY_ID}"\nbranch_id = "{BRANCH_ID}"\n'
        f'public_key = "{public_key}"\n')
    return path
