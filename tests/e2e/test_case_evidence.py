"""A freeze case's evidence and deadlines through the operator's commands
against a running `posgw run`: `cases evidence` stores a file once by its
SHA-256 and the daemon records it; head office adds what it holds by hash
over MQTT; `cases list`/`show` give the due time and overdue flag;
`cases expire` ends it. Each transition arrives, signed, on the `cases`
topic of a real broker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt

from posgw.center.commands import command_payload, send_command
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from posgw.sandbox.ports import free_port, port_accepts
from posgw.simulator import cards as demo
from tests.brokers import shared_broker_port
from tests.drivers.helpers import wait_until
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    center_signed,
    config_table,
    topic_prefix,
    wait_for,
    write_toml,
)
from tests.e2e.test_cases import freeze_one
from tests.e2e.test_operator_cli import POSGW, posgw

HEAD_OFFICE_SCAN = "ab" * 32  # the sha256 of a file head office keeps


@contextlib.asynccontextmanager
async def case_events(port: int, prefix: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every case.v1 payload published on the branch's `cases` topic meanwhile."""
    received: list[dict[str, Any]] = []
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"cases-{free_port()}") as client:
        await client.subscribe(f"{prefix}/{BRANCH}/cases", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                received.append(json.loads(message.payload))  # type: ignore[arg-type]

        task = asyncio.create_task(collect())
        try:
            yield received
        finally:
            task.cancel()


async def test_evidence_deadlines_and_expiry_through_the_operator_commands(
        tmp_path: Path) -> None:
    port, listen = shared_broker_port(), free_port()
    config = str(write_toml(tmp_path / "gw.toml", config_table(tmp_path, port,
                                                              listen_port=listen)))
    with (tmp_path / "gw.log").open("wb") as out:
        daemon = subprocess.Popen([POSGW, "run", "-c", config], stdout=out, stderr=out)
    try:
        async with case_events(port, topic_prefix(tmp_path)) as events:
            await asyncio.to_thread(wait_for, lambda: port_accepts(listen), "the listener")
            await freeze_one(listen, "V0000001", demo.VISA_OK)
            [case] = json.loads((await asyncio.to_thread(
                posgw, "cases", "list", "-c", config, "--json")).stdout)
            await asyncio.to_thread(operator_submits_evidence, config, case["id"], tmp_path)
            reply = await send_command(
                MqttConfig("127.0.0.1", port, topic_prefix=topic_prefix(tmp_path)),
                center_signed(tmp_path, command_payload(
                    BRANCH, "submit_evidence", case_id=case["id"], evidence={
                        "sha256": HEAD_OFFICE_SCAN, "size_bytes": 48_213, "held_at": "center",
                        "filename": "chargeback-letter.pdf", "submitted_by": "risk-desk"})),
                wait_reply_s=15)
            assert reply is not None and reply["outcome"] == "done", reply
            expired = await asyncio.to_thread(posgw, "cases", "expire", "-c", config,
                                              case["id"])
            assert expired.returncode == 0 and expired.stdout.startswith("done"), expired
            await wait_until(lambda: len(events) == 4, 20)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert case["status"] == "open" and case["overdue"] is False
    assert case["first_response_due_at"] and case["expires_at"]
    shown = json.loads(posgw("cases", "show", "-c", config, case["id"]).stdout)
    assert shown["status"] == "expired"
    assert [(f["filename"], f["held_at"]) for f in shown["evidence_files"]] == [
        ("letter.txt", "gateway"), ("chargeback-letter.pdf", "center")]
    verifier = SignatureVerifier({GATEWAY_ID: load_public_key(tmp_path / "keys" /
                                                              PUBLIC_KEY_FILE)})
    for event in events:
        verifier.verify(event)
    assert [e["status"] for e in events] == ["open", "evidence_submitted",
                                             "evidence_submitted", "expired"]
    assert events[2]["evidence"]["sha256"] == HEAD_OFFICE_SCAN


def operator_submits_evidence(config: str, case_id: str, tmp_path: Path) -> None:
    """The letter is stored once, named by its hash; a card number is refused."""
    letter = tmp_path / "letter.txt"
    letter.write_text("The cardholder confirms all three purchases.\n")
    first = posgw("cases", "evidence", "-c", config, case_id, str(letter), "--by", "alice")
    again = posgw("cases", "evidence", "-c", config, case_id, str(letter), "--by", "alice")
    assert first.returncode == 0 and first.stdout.startswith("done"), first
    assert again.returncode == 0 and "already has" in again.stdout, again
    digest = hashlib.sha256(letter.read_bytes()).hexdigest()
    assert [p.name for p in (tmp_path / "evidence").iterdir()] == [digest]
    clear = tmp_path / "receipt.txt"
    clear.write_text(f"card {demo.VISA_OK}\n")
    refused = posgw("cases", "evidence", "-c", config, case_id, str(clear), "--by", "alice")
    assert refused.returncode == 2 and "card number" in refused.stderr
    assert demo.VISA_OK not in refused.stderr + refused.stdout
    assert [p.name for p in (tmp_path / "evidence").iterdir()] == [digest]
    [listed] = json.loads(posgw("cases", "list", "-c", config, "--json").stdout)
    assert (listed["status"], listed["overdue"]) == ("evidence_submitted", False)
