"""Gateway keys registered at the center by command, not trusted on first use:
registration, revocation, rotation overlap, and every rejection quarantined
with its reason and counted. On SQLite and on PostgreSQL (skipped with the
reason when unreachable), and through a real `posgw center -c` process."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from posgw.center.config import RegisteredGateway
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.models import QuarantinedPayload
from posgw.center.registry import GatewayTrust, parse_public_key, register_key, revoke
from posgw.center.verify import key_fingerprint
from posgw.cli.keys import fingerprint
from posgw.cli.main import main
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from tests.brokers import shared_broker_port
from tests.center.events import GATEWAY_ID, TX_TOPIC, signed_event, wire
from tests.center.processes import Topics, center_process, publish, write_config
from tests.center.stored import wait_stored
from tests.center.test_ingest import private_topics

OTHER = "gw-2"


def new_keys(folder: Path) -> GatewayKeys:
    return load_keys(generate_keys(folder).parent)


def signed_as(keys: GatewayKeys, gateway_id: str, n: int, **changes: Any) -> bytes:
    """Event n of terminal T0001, claiming `gateway_id`, signed with `keys`."""
    unsigned = {k: v for k, v in signed_event(keys, n).items() if k != "signature"}
    return wire(keys.signer.sign({**unsigned, "gateway_id": gateway_id, **changes}))


def public_key(keys: GatewayKeys) -> Any:
    return parse_public_key(keys.public_key_pem, "test")


def live_ingest(store: CenterStore, configured: tuple[RegisteredGateway, ...] = ()
                ) -> CenterIngest:
    """An ingest that re-reads the registrations before every message (a
    refresh interval of 0), so a revocation is seen by the very next one."""
    return CenterIngest(store, GatewayTrust(configured, store, refresh_s=0), private_topics())


def quarantined(store: CenterStore) -> list[tuple[str, str]]:
    with store.session() as session:
        return [(row.kind, row.reason) for row in session.scalars(
            select(QuarantinedPayload).order_by(QuarantinedPayload.id))]  # type: ignore[arg-type]


async def test_a_registered_gateway_is_ingested_and_an_unregistered_one_quarantined(
        store: CenterStore, tmp_path: Path) -> None:
    keys = new_keys(tmp_path / "gw2")
    ingest = live_ingest(store)
    assert await ingest.handle(TX_TOPIC, signed_as(keys, OTHER, 1)) == "quarantined"
    assert register_key(store, OTHER, public_key(keys), "B001") is True
    assert register_key(store, OTHER, public_key(keys), "B001") is False  # already trusted
    assert await ingest.handle(TX_TOPIC, signed_as(keys, OTHER, 2)) == "ingested"
    assert quarantined(store) == [("unregistered", "unknown gateway_id 'gw-2': not registered "
                                   "(center.toml [[gateways]] or `posgw center gateways "
                                   "register`)")]


async def test_a_revoked_gateway_is_quarantined_as_revoked(
        store: CenterStore, tmp_path: Path) -> None:
    keys = new_keys(tmp_path / "gw2")
    register_key(store, OTHER, public_key(keys), "B001")
    ingest = live_ingest(store)
    assert await ingest.handle(TX_TOPIC, signed_as(keys, OTHER, 1)) == "ingested"
    assert revoke(store, OTHER, ()) == [key_fingerprint(public_key(keys))]
    assert await ingest.handle(TX_TOPIC, signed_as(keys, OTHER, 2)) == "quarantined"
    assert quarantined(store) == [("revoked", "gateway 'gw-2' is revoked")]
    assert ingest.quarantined_by_kind == {"revoked": 1}


async def test_a_center_toml_key_revoked_by_command_is_no_longer_trusted(
        store: CenterStore, tmp_path: Path) -> None:
    keys = new_keys(tmp_path / "gw1")
    configured = (RegisteredGateway(GATEWAY_ID, str(tmp_path / "gw1" / PUBLIC_KEY_FILE),
                                    public_key(keys), "B001"),)
    ingest = live_ingest(store, configured)
    assert await ingest.handle(TX_TOPIC, wire(signed_event(keys, 1))) == "ingested"
    assert revoke(store, GATEWAY_ID, configured) == [key_fingerprint(public_key(keys))]
    assert await ingest.handle(TX_TOPIC, wire(signed_event(keys, 2))) == "quarantined"
    assert quarantined(store) == [("revoked", "gateway 'gw-1' is revoked")]


async def test_during_a_rotation_both_keys_verify_until_the_old_one_is_revoked(
        store: CenterStore, tmp_path: Path) -> None:
    old, new = new_keys(tmp_path / "old"), new_keys(tmp_path / "new")
    for keys in (old, new):
        register_key(store, OTHER, public_key(keys), "B001")
    ingest = live_ingest(store)
    assert [await ingest.handle(TX_TOPIC, signed_as(keys, OTHER, n))
            for n, keys in ((1, old), (2, new))] == ["ingested", "ingested"]
    old_print = key_fingerprint(public_key(old))
    assert revoke(store, OTHER, (), old_print) == [old_print]
    assert await ingest.handle(TX_TOPIC, signed_as(old, OTHER, 3)) == "quarantined"
    assert await ingest.handle(TX_TOPIC, signed_as(new, OTHER, 4)) == "ingested"
    assert quarantined(store) == [
        ("revoked", f"signed with a revoked key of gateway 'gw-2' (sha256:{old_print})")]


async def test_a_key_registered_after_the_last_reload_is_trusted_at_once(
        store: CenterStore, tmp_path: Path) -> None:
    first, later = new_keys(tmp_path / "first"), new_keys(tmp_path / "later")
    register_key(store, OTHER, public_key(first), "B001")
    trust = GatewayTrust((), store, refresh_s=3600)  # no periodic reload during the test
    ingest = CenterIngest(store, trust, private_topics())
    assert await ingest.handle(TX_TOPIC, signed_as(first, OTHER, 1)) == "ingested"
    register_key(store, "gw-3", public_key(later), "B001")  # a new gateway
    assert await ingest.handle(TX_TOPIC, signed_as(later, "gw-3", 3)) == "ingested"
    register_key(store, OTHER, public_key(later), "B001")  # a rotated key of a known one
    assert await ingest.handle(TX_TOPIC, signed_as(later, OTHER, 2)) == "ingested"
    assert trust.reloads == 3  # the first load, then one per miss


async def test_each_rejection_is_quarantined_with_its_reason_and_counted(
        store: CenterStore, tmp_path: Path) -> None:
    keys, forger = new_keys(tmp_path / "gw2"), new_keys(tmp_path / "forger")
    register_key(store, OTHER, public_key(keys), "B001")
    ingest = live_ingest(store)
    stale = (datetime.now(UTC) - timedelta(days=60)).isoformat().replace("+00:00", "Z")
    assert await ingest.handle(TX_TOPIC, signed_as(keys, OTHER, 1)) == "ingested"
    rejected = [signed_as(forger, OTHER, 2),  # forged: another key claims gw-2
                signed_as(keys, OTHER, 1, event_id="ev-replayed"),  # seq 1 again
                signed_as(keys, OTHER, 3, occurred_at=stale)]
    assert [await ingest.handle(TX_TOPIC, raw) for raw in rejected] == ["quarantined"] * 3
    assert ingest.quarantined_by_kind == {"bad_signature": 1, "replay": 1, "stale": 1}
    kinds = [kind for kind, _reason in quarantined(store)]
    assert kinds == ["bad_signature", "replay", "stale"]
    reasons = [reason for _kind, reason in quarantined(store)]
    assert reasons[0] == "bad signature" and "seq 1 of gateway gw-2" in reasons[1]
    assert reasons[2] == "occurred_at is older than 30 days (max_event_age_s)"


# --- the command line ----------------------------------------------------------


@pytest.fixture
def center_toml(tmp_path: Path) -> Path:
    """A center.toml trusting gw-1 (keys/), with a SQLite database not made yet."""
    generate_keys(tmp_path / "keys")
    return write_config(tmp_path / "center.toml", database=f"sqlite:///{tmp_path / 'c.db'}",
                        port=1883, topics=Topics.fresh(), client_id=None,
                        keys_dir=tmp_path / "keys")


def posgw(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["center", "-c", str(config), *args])


def listed(config: Path) -> list[dict[str, Any]]:
    result = posgw(config, "gateways", "list", "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_list_before_any_registration_shows_center_toml_and_creates_nothing(
        center_toml: Path, tmp_path: Path) -> None:
    [entry] = listed(center_toml)
    pem = (tmp_path / "keys" / PUBLIC_KEY_FILE).read_bytes()
    assert entry == {"gateway_id": GATEWAY_ID, "branch_id": "B001",
                     "fingerprint": fingerprint(pem),
                     "source": "center.toml", "registered_at": None, "revoked_at": None,
                     "trusted": True, "newest_seq": None, "seqs_missing": 0, "seqs_lost": 0}
    assert not (tmp_path / "c.db").exists()


def test_register_list_and_revoke_by_command(center_toml: Path, tmp_path: Path) -> None:
    generate_keys(tmp_path / "gw2")
    pem_path = tmp_path / "gw2" / PUBLIC_KEY_FILE
    expected = fingerprint(pem_path.read_bytes())  # what `posgw keys show` prints
    register = ("gateways", "register", OTHER, str(pem_path), "--branch", "B002")
    result = posgw(center_toml, *register)
    assert (result.exit_code, result.stdout) == (
        0, f"registered: gw-2 (branch B002) sha256:{expected}\n")
    again = posgw(center_toml, *register)
    assert again.stdout == f"already registered: gw-2 (branch B002) sha256:{expected}\n"
    elsewhere = posgw(center_toml, *register[:-1], "B003")
    assert elsewhere.exit_code == 2
    assert "gw-2 is registered for branch B002: revoke its keys first" in elsewhere.stderr
    registered = [e for e in listed(center_toml) if e["gateway_id"] == OTHER]
    assert [(e["fingerprint"], e["branch_id"], e["source"], e["trusted"])
            for e in registered] == [(expected, "B002", "registered", True)]
    assert registered[0]["registered_at"] is not None
    table = posgw(center_toml, "gateways", "list")
    assert expected in table.stdout and "trusted" in table.stdout
    revoked = posgw(center_toml, "gateways", "revoke", OTHER)
    assert (revoked.exit_code, revoked.stdout) == (0, f"revoked: gw-2 sha256:{expected}\n")
    assert [e["trusted"] for e in listed(center_toml) if e["gateway_id"] == OTHER] == [False]
    nothing_left = posgw(center_toml, "gateways", "revoke", OTHER)
    assert nothing_left.exit_code == 1 and "no trusted key of 'gw-2'" in nothing_left.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("gw 2", "keys/signing.pub"), "'gw 2': a gateway_id is letters, digits"),
    ((OTHER, "keys/token.key"), "keys/token.key: not a PEM public key"),
    ((OTHER, "keys/missing.pub"), "keys/missing.pub: No such file or directory"),
])
def test_register_refuses_a_bad_id_or_key_with_one_line(
        center_toml: Path, tmp_path: Path, args: tuple[str, str], message: str) -> None:
    gateway_id, relative = args
    result = posgw(center_toml, "gateways", "register", gateway_id, str(tmp_path / relative),
                   "--branch", "B001")
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


async def test_quarantine_lists_counts_by_kind_and_the_latest_reasons(
        center_toml: Path, tmp_path: Path) -> None:
    keys = load_keys(tmp_path / "keys")
    store = CenterStore(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        ingest = CenterIngest(store, GatewayTrust((), store), private_topics())
        for n in (1, 2):
            await ingest.handle("pos/v1/B001/T0001/tx", wire(signed_event(keys, n)))
        await ingest.handle("pos/v1/B001/T0001/tx", b"not json")
    finally:
        store.close()
    result = posgw(center_toml, "quarantine", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["counts"] == {"unregistered": 2, "not_json": 1}
    assert [e["kind"] for e in shown["recent"]] == ["not_json", "unregistered", "unregistered"]
    assert shown["recent"][0]["reason"] == "not JSON"
    table = posgw(center_toml, "quarantine", "--recent", "1")
    assert table.exit_code == 0 and "unregistered" in table.stdout
    assert "latest 1" in table.stdout


async def test_a_running_center_trusts_a_gateway_registered_without_a_restart(
        tmp_path: Path) -> None:
    port, topics = shared_broker_port(), Topics.fresh()
    url = f"sqlite:///{tmp_path / 'center.db'}"
    generate_keys(tmp_path / "keys")
    newcomer = new_keys(tmp_path / "gw2")
    config = write_config(tmp_path / "center.toml", database=url, port=port, topics=topics,
                          client_id=f"{topics.group}-reg", keys_dir=tmp_path / "keys")
    with center_process(config) as center:
        await asyncio.to_thread(center.wait_ready)
        await publish(port, topics.tx(), [signed_as(newcomer, OTHER, 1)])
        await _until_quarantined(url, 1)
        result = await asyncio.to_thread(
            posgw, config, "gateways", "register", OTHER, str(tmp_path / "gw2" / "signing.pub"),
            "--branch", "B001")
        assert result.exit_code == 0, result.output
        await publish(port, topics.tx(), [signed_as(newcomer, OTHER, 2)])
        assert await wait_stored(url, 1) == ["ev-B001-T0001-2"]
        assert center.stop() == (1, 0, 1)
    assert any("quarantined 1 (unregistered 1)" in line for line in center.lines)


async def _until_quarantined(url: str, count: int, timeout_s: float = 20.0) -> None:
    """Polls the quarantine table with a deadline."""
    def rows() -> int:
        store = CenterStore(url, create=False)
        try:
            return len(quarantined(store))
        finally:
            store.close()

    async with asyncio.timeout(timeout_s):
        while await asyncio.to_thread(rows) < count:
            await asyncio.sleep(0.05)


def test_a_database_from_before_quarantine_kinds_is_read_then_upgraded(
        center_toml: Path, tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "c.db")  # the quarantine table as it was
    with old:
        old.execute("CREATE TABLE center_quarantine (id INTEGER PRIMARY KEY, topic VARCHAR(256) "
                    "NOT NULL, reason VARCHAR(256) NOT NULL, payload_text VARCHAR NOT NULL, "
                    "received_at DATETIME NOT NULL)")
        old.execute("INSERT INTO center_quarantine (topic, reason, payload_text, received_at) "
                    "VALUES ('t', 'bad signature', '{}', '2025-03-14 10:00:00')")
    old.close()
    shown = json.loads(posgw(center_toml, "quarantine", "--json").stdout)
    assert shown["counts"] == {"unclassified": 1}  # read as it is, not altered
    CenterStore(f"sqlite:///{tmp_path / 'c.db'}").close()  # what the center does at start
    with sqlite3.connect(tmp_path / "c.db") as db:
        assert db.execute("SELECT kind FROM center_quarantine").fetchall() == [("",)]
