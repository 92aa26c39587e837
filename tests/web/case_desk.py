"""A console site with freeze cases in its database, and a listener that
hears the commands the console publishes (a real broker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from posgw.center.command_key import PRIVATE_FILE, generate_command_key
from posgw.center.db import CenterStore
from posgw.gateway.security import GatewayKeys
from tests.brokers import shared_broker_port
from tests.center.cases import transition
from tests.center.events import signed_event
from tests.e2e.harness import write_toml
from tests.web.conftest import ConsoleSite

FROZEN = "ev-B001-T0001-5"
OVERDUE_CASE = f"case-{FROZEN}"
LATER_CASE = "case-ev-B001-T0001-6"
RELEASED_CASE = "case-ev-B001-T0001-7"
MAX_EVIDENCE_BYTES = 4096
MAX_EVIDENCE_FILES = 2


def fill_cases(store: CenterStore, keys: GatewayKeys) -> None:
    """Three frozen sales of card ...0010 on T0001: the first case overdue, the
    second due in five hours, the third released (and so out of the queue)."""
    now = datetime.now(UTC)
    for n in (5, 6, 7):
        store.insert_event("t", signed_event(keys, n, status="frozen"))
    store.writer().quarantine([], recorded=[
        transition(keys, 20, "open", case_id=OVERDUE_CASE, tx_event_ids=(FROZEN,),
                   due=now - timedelta(hours=1)),
        transition(keys, 21, "open", case_id=LATER_CASE, tx_event_ids=("ev-B001-T0001-6",),
                   due=now + timedelta(hours=5)),
        transition(keys, 22, "open", case_id=RELEASED_CASE, tx_event_ids=("ev-B001-T0001-7",)),
        transition(keys, 23, "released", case_id=RELEASED_CASE, minutes=30,
                   tx_event_ids=("ev-B001-T0001-7",))])


def configure(site: ConsoleSite, tmp_path: Path, *, command_key: bool) -> str:
    """center.toml for the desk: a small evidence cap, the shared broker under
    a prefix of this test's own, and (optionally) a command key. The prefix."""
    prefix = f"desk-{uuid.uuid4().hex[:10]}/v1"
    center: dict[str, Any] = {"database": site.store.engine.url.render_as_string(
        hide_password=False)}
    if command_key:
        generate_command_key(tmp_path / "command-keys")
        center["command_key"] = str(tmp_path / "command-keys" / PRIVATE_FILE)
    write_toml(site.config_path, {
        "center": center,
        "mqtt": {"host": "127.0.0.1", "port": shared_broker_port(), "topic_prefix": prefix},
        "cases": {"max_evidence_bytes": MAX_EVIDENCE_BYTES,
                  "max_evidence_files": MAX_EVIDENCE_FILES, "reply_wait_s": 0}})
    return prefix


@dataclass
class Heard:
    commands: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@contextlib.contextmanager
def commands_heard(topic: str) -> Iterator[Heard]:
    """Every payload published on `topic` meanwhile (a subscriber in a thread)."""
    heard, ready, stop = Heard(), threading.Event(), threading.Event()

    async def listen() -> None:
        async with aiomqtt.Client("127.0.0.1", shared_broker_port(),
                                  identifier=f"desk-{uuid.uuid4().hex[:8]}") as client:
            await client.subscribe(topic, qos=1)
            ready.set()
            messages = aiter(client.messages)
            while not stop.is_set():
                try:
                    message = await asyncio.wait_for(anext(messages), 0.2)
                except TimeoutError:
                    continue  # look at `stop` again
                heard.commands.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]
                heard.arrived.set()

    thread = threading.Thread(target=asyncio.run, args=(listen(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the listener did not subscribe"
    try:
        yield heard
    finally:
        stop.set()
        thread.join(10)
