"""The card vault through the running daemon: a frozen sale leaves exactly one
vault row, which opens to the card's PAN, while no file the gateway wrote
holds the PAN in clear; a return to the card recovers it, then the row is
gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import select

from posgw.center.commands import build_command, send_command
from posgw.center.verify import SignatureVerifier, load_public_key
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security.keys import PUBLIC_KEY_FILE
from posgw.gateway.security.vault import CardVault, load_keyring
from posgw.gateway.store import FreezeCase, LedgerEntry, Store
from posgw.gateway.store.models import VaultedCard
from posgw.protocols.normalize import CardNumber
from posgw.simulator import cards as demo
from tests.brokers import shared_broker_port
from tests.e2e.harness import (
    BRANCH,
    GATEWAY_ID,
    center_signed,
    connected_gateway,
    gateway_config,
    topic_prefix,
)
from tests.e2e.test_cases import freeze_one
from tests.e2e.test_no_card_data_at_rest import leaked


def vault_state(database: str) -> tuple[list[VaultedCard], list[LedgerEntry], list[FreezeCase]]:
    with Store(database) as store, store.session() as session:
        return (list(session.scalars(select(VaultedCard))),
                [row for row in session.scalars(select(LedgerEntry)) if row.status == "frozen"],
                list(session.scalars(select(FreezeCase))))


def files_with_the_pan(workdir: Path, pan: str) -> list[str]:
    """Every file the gateway wrote (database, WAL, ...), keys aside, that holds
    the PAN as digits or as hex of its ASCII."""
    return [path.name for path in workdir.rglob("*")
            if path.is_file() and "keys" not in path.parts and leaked(path.read_bytes(), {pan})]


async def test_a_frozen_sale_is_vaulted_once_and_a_return_recovers_then_shreds_it(
        tmp_path: Path) -> None:
    port = shared_broker_port()
    config = gateway_config(tmp_path, port)
    mqtt = MqttConfig("127.0.0.1", port, topic_prefix=topic_prefix(tmp_path))
    verifier = SignatureVerifier(
        {GATEWAY_ID: load_public_key(tmp_path / "keys" / PUBLIC_KEY_FILE)})
    async with connected_gateway(config) as gateway:
        await freeze_one(gateway.listener_ports[0], "V0000001", demo.VISA_OK)
        vaulted, frozen, cases = await asyncio.to_thread(vault_state, config.database)
        [row], [sale], [case] = vaulted, frozen, cases
        assert row.event_id == sale.event_id and row.key_id == "v1"
        with Store(config.database) as store:
            revealed = CardVault(load_keyring(tmp_path / "keys"), store).reveal(row.event_id)
        assert revealed.card == CardNumber(demo.VISA_OK)
        assert files_with_the_pan(tmp_path, demo.VISA_OK) == []
        returned = center_signed(tmp_path, build_command(BRANCH, "return", [case.id]))
        reply = await send_command(mqtt, returned, wait_reply_s=15, verifier=verifier)
        assert reply is not None and reply["outcome"] == "done", reply
        assert "card 476173******0010 recovered from the vault (key v1)" in str(reply["detail"])
        vaulted, _, cases = await asyncio.to_thread(vault_state, config.database)
        assert vaulted == [] and [c.status for c in cases] == ["returned"]
    assert files_with_the_pan(tmp_path, demo.VISA_OK) == []
