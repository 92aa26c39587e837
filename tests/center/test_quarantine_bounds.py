"""What a flood of junk can do to the center's quarantine, and what it shows.

Issue 17, finding 5: 5,000 junk payloads of 20 KB on `tx` grew the center
database by 80 MB. Now each source (a topic's branch level) keeps at most
`quarantine_rows_per_source` rows and only counts the rest, a payload no
gateway signed keeps at most 2 KB, and one over 64 KB is not even parsed.
Finding 9: a card number with spaces in a quarantined payload was stored in
clear, and `posgw center quarantine` printed untrusted topics as they came.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
from sqlalchemy import select

from posgw.center.db import CenterStore
from posgw.center.ingest import MAX_PAYLOAD_BYTES, CenterIngest, Received
from posgw.center.models import QuarantinedPayload
from posgw.center.quarantine import counts_by_kind, overflow
from posgw.center.rows import MAX_UNSIGNED_TEXT
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from tests.brokers import shared_broker_port
from tests.center.events import TX_TOPIC, signed_event, verifier, wire
from tests.center.processes import Topics, center_process, write_config
from tests.center.stored import wait_stored
from tests.center.test_registration import posgw

JUNK = 200
CAP = 10
JUNK_BYTES = 20_000


def stored_payloads(url: str) -> list[tuple[str, str, str]]:
    """(source, kind, payload_text) of every quarantined row."""
    store = CenterStore(url, create=False)
    try:
        with store.session() as session:
            return [(row.source, row.kind, row.payload_text) for row in session.scalars(
                select(QuarantinedPayload).order_by(QuarantinedPayload.id))]  # type: ignore[arg-type]
    finally:
        store.close()


async def test_a_flood_of_junk_keeps_a_capped_number_of_small_rows(tmp_path: Path) -> None:
    port, topics = shared_broker_port(), Topics.fresh()
    url = f"sqlite:///{tmp_path / 'center.db'}"
    keys = load_keys(generate_keys(tmp_path / "keys").parent)
    config = write_config(tmp_path / "center.toml", database=url, port=port, topics=topics,
                          client_id=f"{topics.group}-flood", keys_dir=tmp_path / "keys")
    config.write_text(config.read_text().replace(
        "[center]\n", f"[center]\nquarantine_rows_per_source = {CAP}\n"))
    with center_process(config) as center:
        await asyncio.to_thread(center.wait_ready)
        async with aiomqtt.Client("127.0.0.1", port,
                                  protocol=aiomqtt.ProtocolVersion.V5) as flooder:
            await flooder.publish(topics.tx("B009"), b"{" * (MAX_PAYLOAD_BYTES + 1), qos=1)
            for n in range(JUNK):
                await flooder.publish(topics.tx("B009"), b"x%d" % n + b"." * JUNK_BYTES, qos=1)
            # After the flood, in order: a real event is still stored.
            await flooder.publish(topics.tx(), wire(signed_event(keys, 1)), qos=1)
        assert await wait_stored(url, 1) == ["ev-B001-T0001-1"]
        assert center.stop() == (1, 0, JUNK + 1)
    rows = stored_payloads(url)
    assert [(source, kind) for source, kind, _ in rows] == (
        [("B009", "oversized")] + [("B009", "not_json")] * (CAP - 1))
    assert max(len(text) for _, _, text in rows) <= MAX_UNSIGNED_TEXT
    shown = posgw(config, "quarantine", "--json")
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["counts"] == {"not_json": JUNK, "oversized": 1}
    assert report["not_kept"] == [{"source": "B009", "kind": "not_json",
                                   "count": JUNK + 1 - CAP}]


async def test_card_numbers_with_spaces_or_dashes_are_masked_in_quarantine(
        sqlite_center: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(sqlite_center, verifier(keys, branch="B001"), MqttConfig())
    for pan in ("4761 7300 0000 0010", "4761-7300-0000-0010", "4761730000000010"):
        leaky = json.dumps({"pan": pan, "merchant": "M0000000000001"}).encode()
        assert await ingest.handle(TX_TOPIC, leaky) == "quarantined"
    with sqlite_center.session() as session:
        texts = [row.payload_text for row in session.scalars(select(QuarantinedPayload))]
    assert len(texts) == 3
    for text in texts:
        assert "476173******0010" in text
        assert "7300" not in text and "0000 0010" not in text and "0000-0010" not in text


def test_quarantine_prints_untrusted_topics_escaped(tmp_path: Path) -> None:
    generate_keys(tmp_path / "keys")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    config = write_config(tmp_path / "center.toml", database=url, port=shared_broker_port(),
                          topics=Topics.fresh(), client_id=None, keys_dir=tmp_path / "keys")
    store = CenterStore(url)
    try:
        store.quarantine("pos/v1/[bold red]B001\x1b[2J\x1b]0;owned\x07/T1/tx", "not JSON", b"x",
                         "not_json")
    finally:
        store.close()
    shown = posgw(config, "quarantine")
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "pos/v1/[bold red]B001\\x1b[2J\\x1b]0;owned\\x07/T1/tx" in shown.stdout


async def test_past_the_cap_payloads_are_counted_not_kept_on_either_database(
        store: CenterStore, keys: GatewayKeys) -> None:
    ingest = CenterIngest(store, verifier(keys, branch="B001"), MqttConfig(),
                          quarantine_rows_per_source=2)
    outcomes = (await ingest.handle_batch([Received("pos/v1/B009/T1/tx", b"junk %d" % n)
                                           for n in range(5)])).outcomes
    assert outcomes == ["quarantined"] * 5
    with store.session() as session:
        assert len(list(session.scalars(select(QuarantinedPayload)))) == 2
        assert overflow(session) == {("B009", "not_json"): 3}
        assert counts_by_kind(session) == {"not_json": 5}
    assert ingest.quarantine_overflow == 3
