"""The card vault: AES-256-GCM sealing of a frozen sale's PAN, bound to its
row and key id; rotation; refusal of key files others may read; the table
rows the pipeline commits and the case service reveals and shreds."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from posgw.gateway.security.keys import (
    LooseKeyFile,
    add_vault_key,
    generate_keys,
    vault_key_ids,
)
from posgw.gateway.security.vault import (
    NONCE_BYTES,
    CardVault,
    SealedCard,
    VaultError,
    VaultKeyring,
    ensure_keyring,
    load_keyring,
)
from posgw.gateway.store import FreezeCase, Store
from posgw.gateway.store.models import VaultedCard
from posgw.protocols.normalize import CardNumber

PAN = "4761739001010010"
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    generate_keys(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def keyring(keys_dir: Path) -> VaultKeyring:
    return load_keyring(keys_dir)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'gw.db'}") as opened:
        yield opened


def flipped(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def test_a_sealed_pan_opens_again_under_its_own_row(keyring: VaultKeyring) -> None:
    sealed = keyring.seal(PAN, event_id="ev-1")
    assert keyring.open(sealed, event_id="ev-1") == PAN
    assert sealed.key_id == "v1" and len(sealed.nonce) == NONCE_BYTES
    assert PAN.encode() not in sealed.ciphertext
    assert len(sealed.ciphertext) == len(PAN) + 16  # GCM tag


def test_every_seal_has_a_fresh_nonce(keyring: VaultKeyring) -> None:
    first, second = (keyring.seal(PAN, event_id="ev-1") for _ in range(2))
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext


def test_a_tampered_ciphertext_does_not_open(keyring: VaultKeyring) -> None:
    sealed = keyring.seal(PAN, event_id="ev-1")
    for altered in (SealedCard(sealed.key_id, sealed.nonce, flipped(sealed.ciphertext)),
                    SealedCard(sealed.key_id, sealed.nonce, flipped(sealed.ciphertext, -1)),
                    SealedCard(sealed.key_id, flipped(sealed.nonce), sealed.ciphertext)):
        with pytest.raises(VaultError, match="does not authenticate") as info:
            keyring.open(altered, event_id="ev-1")
        assert PAN not in str(info.value)


def test_a_ciphertext_moved_to_another_row_does_not_open(keyring: VaultKeyring) -> None:
    sealed = keyring.seal(PAN, event_id="ev-1")
    with pytest.raises(VaultError, match="ev-2: does not authenticate"):
        keyring.open(sealed, event_id="ev-2")


def test_an_unknown_key_id_is_named_and_nothing_opens(keyring: VaultKeyring) -> None:
    sealed = keyring.seal(PAN, event_id="ev-1")
    with pytest.raises(VaultError, match="vault key 'v9' is not in the keyring"):
        keyring.open(SealedCard("v9", sealed.nonce, sealed.ciphertext), event_id="ev-1")


def test_a_ciphertext_relabelled_with_another_key_id_does_not_open(keys_dir: Path) -> None:
    add_vault_key(keys_dir)
    keyring = load_keyring(keys_dir)
    sealed = keyring.seal(PAN, event_id="ev-1")  # under v2
    with pytest.raises(VaultError, match="does not authenticate under vault key 'v1'"):
        keyring.open(SealedCard("v1", sealed.nonce, sealed.ciphertext), event_id="ev-1")


def test_after_rotation_old_ids_still_open_and_new_seals_use_the_new_id(
        keys_dir: Path) -> None:
    before = load_keyring(keys_dir).seal(PAN, event_id="ev-old")
    assert add_vault_key(keys_dir) == "v2"
    rotated = load_keyring(keys_dir)
    after = rotated.seal(PAN, event_id="ev-new")
    assert (before.key_id, after.key_id, rotated.current) == ("v1", "v2", "v2")
    assert rotated.open(before, event_id="ev-old") == PAN
    assert rotated.open(after, event_id="ev-new") == PAN
    assert vault_key_ids(keys_dir) == ["v1", "v2"]


def test_vault_key_files_are_private_in_a_private_folder(keys_dir: Path) -> None:
    assert stat.S_IMODE((keys_dir / "vault").stat().st_mode) == 0o700
    assert stat.S_IMODE((keys_dir / "vault" / "v1.key").stat().st_mode) == 0o600


def test_a_vault_key_others_may_read_is_refused_naming_the_file_and_the_fix(
        keys_dir: Path) -> None:
    key_file = keys_dir / "vault" / "v1.key"
    key_file.chmod(0o640)
    with pytest.raises(LooseKeyFile) as info:
        load_keyring(keys_dir)
    assert str(info.value) == (f"{key_file}: mode 0640 lets group or others access a private "
                               f"key; refusing to use it. Fix: chmod 600 {key_file}")


def test_a_keys_folder_from_before_the_vault_gets_its_first_key(tmp_path: Path) -> None:
    folder = tmp_path / "old-keys"
    generate_keys(folder)
    for path in (folder / "vault").iterdir():
        path.unlink()
    assert ensure_keyring(folder).current == "v1"


def test_the_keyring_never_shows_a_key(keyring: VaultKeyring, keys_dir: Path) -> None:
    secret = (keys_dir / "vault" / "v1.key").read_text().strip()
    assert secret not in repr(keyring) and "v1" in repr(keyring)


# -- the table ------------------------------------------------------------------


def committed(store: Store, vault: CardVault, event_id: str) -> None:
    row = vault.sealed_row(CardNumber(PAN), event_id, NOW)
    with store.writing() as session:
        session.add(VaultedCard(**row.values))


def test_a_vaulted_row_reveals_the_card_masked_with_its_key_id(
        store: Store, keyring: VaultKeyring) -> None:
    vault = CardVault(keyring, store)
    committed(store, vault, "ev-1")
    revealed = vault.reveal("ev-1")
    assert revealed.card == CardNumber(PAN) and revealed.key_id == "v1"
    assert str(revealed.card) == "476173******0010" and PAN not in repr(revealed)
    assert vault.recoverable("ev-1") == (
        "card 476173******0010 recovered from the vault (key v1)")


def test_a_missing_row_cannot_be_revealed(store: Store, keyring: VaultKeyring) -> None:
    with pytest.raises(VaultError, match="no card in the vault for ev-9"):
        CardVault(keyring, store).reveal("ev-9")


def test_a_row_copied_onto_another_sale_does_not_open(
        store: Store, keyring: VaultKeyring) -> None:
    vault = CardVault(keyring, store)
    committed(store, vault, "ev-1")
    with store.writing() as session:
        row = session.scalars(select(VaultedCard)).one()
        session.add(VaultedCard(event_id="ev-2", key_id=row.key_id, nonce=row.nonce,
                                ciphertext=row.ciphertext, created_at=NOW))
    with pytest.raises(VaultError, match="ev-2: does not authenticate"):
        vault.reveal("ev-2")


def test_shred_deletes_the_card_and_sweep_those_of_resolved_cases(
        store: Store, keyring: VaultKeyring) -> None:
    vault = CardVault(keyring, store)
    for n in (1, 2, 3):
        committed(store, vault, f"ev-{n}")
    with store.writing() as session:
        for n, status in ((2, "released"), (3, "open")):
            session.add(FreezeCase(id=f"case-ev-{n}", status=status, terminal_id="T1",
                                   rule="rapid_repeat", evidence={}, opened_at=NOW,
                                   updated_at=NOW))
    assert vault.shred("ev-1") is True and vault.shred("ev-1") is False
    assert vault.sweep() == 1  # ev-2's case is resolved; ev-3's is still open
    with store.session() as session:
        assert list(session.scalars(select(VaultedCard.event_id))) == ["ev-3"]
