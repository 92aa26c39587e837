"""The card vault: the PAN of a frozen sale, kept encrypted until its case ends.

Everywhere else a card is its masked PAN and keyed token (DESIGN rule 5).
A freeze case may end in `return_to_card`, and money goes back to a card
only by its number, so a frozen sale's PAN is sealed here:

- AES-256-GCM (NIST SP 800-38D) under the current vault key, with a fresh
  random 96-bit nonce per seal. Random nonces are safe for up to 2^32 seals
  per key (SP 800-38D §8.3); one per frozen sale is far below that, and a
  rotation starts a new key anyway.
- The associated data binds the ciphertext to its row: the frozen ledger
  row's `event_id` and the key id. A ciphertext copied to another row, or
  relabelled with another key id, fails authentication instead of opening.
- The key id is stored with the ciphertext, so a rotation (`posgw keys
  rotate --what encryption`) only changes which key new seals use; rows
  sealed earlier still open under their own key.

The row goes into the same group commit as the frozen ledger row
(pipeline/records.py), and is deleted once the case is resolved (`shred`,
called by the case service; `sweep` at start-up catches a crash in
between). Nothing here logs or raises with card data: errors name the
event and the key id only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, literal, select
from sqlmodel import col

from posgw.gateway.case_policy import RESOLVED
from posgw.gateway.security.keys import (
    VAULT_KEY_BYTES,
    add_vault_key,
    read_vault_keys,
    vault_key_ids,
)
from posgw.gateway.store import FreezeCase, Store
from posgw.gateway.store.models import VaultedCard
from posgw.gateway.store.rows import TableRow, table_row
from posgw.protocols.normalize import CardNumber

log = logging.getLogger(__name__)

NONCE_BYTES = 12  # 96 bits: GCM's native IV length (SP 800-38D §5.2.1.1)
#: Names the format of the associated data; a new layout gets a new label.
AAD_LABEL = "posgw-card-vault-v1"
#: Case states after which the card is no longer needed (released, returned,
#: expired: gateway/case_policy.py).
RESOLVED_CASE_STATES = RESOLVED
CASE_ID_PREFIX = "case-"


class VaultError(Exception):
    """A card could not be sealed or opened. Never carries card data."""


@dataclass(frozen=True, slots=True)
class SealedCard:
    key_id: str
    nonce: bytes
    ciphertext: bytes  # includes GCM's 16-byte tag


@dataclass(frozen=True, slots=True)
class RevealedCard:
    """A card recovered from the vault; `card` prints masked."""

    card: CardNumber
    key_id: str


def associated_data(event_id: str, key_id: str) -> bytes:
    """What a ciphertext is bound to; JSON keeps the parts unambiguous."""
    return json.dumps([AAD_LABEL, event_id, key_id], separators=(",", ":")).encode("utf-8")


class VaultKeyring:
    """The vault keys by id; `current` seals, every id opens. Never shows a key."""

    __slots__ = ("_ciphers", "current")

    def __init__(self, current: str, keys: Mapping[str, bytes]) -> None:
        if current not in keys:
            raise ValueError(f"current vault key {current!r} is not in the keyring")
        wrong = [key_id for key_id, key in keys.items() if len(key) != VAULT_KEY_BYTES]
        if wrong:
            raise ValueError(f"vault keys {', '.join(wrong)} are not {VAULT_KEY_BYTES} bytes")
        self.current = current
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def seal(self, pan_digits: str, *, event_id: str) -> SealedCard:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self.current].encrypt(
            nonce, pan_digits.encode("ascii"), associated_data(event_id, self.current))
        return SealedCard(self.current, nonce, ciphertext)

    def open(self, sealed: SealedCard, *, event_id: str) -> str:
        """The PAN digits; VaultError for an unknown key id or any mismatch."""
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise VaultError(f"card of {event_id}: vault key {sealed.key_id!r} is not in the "
                             "keyring (was its key file removed?)")
        try:
            plain = cipher.decrypt(sealed.nonce, sealed.ciphertext,
                                   associated_data(event_id, sealed.key_id))
        except InvalidTag:
            raise VaultError(f"card of {event_id}: does not authenticate under vault key "
                             f"{sealed.key_id!r} (altered, moved or wrong key)") from None
        return plain.decode("ascii")

    def __repr__(self) -> str:
        return f"VaultKeyring(current={self.current!r}, key_ids={self.key_ids!r})"


def load_keyring(directory: str | Path) -> VaultKeyring:
    """The keyring in `directory/vault`; KeyFileError (naming the file) when a
    key file is missing, malformed or readable by group or others."""
    current, keys = read_vault_keys(directory)
    return VaultKeyring(current, keys)


def ensure_keyring(directory: str | Path) -> VaultKeyring:
    """The keyring, with a first key created when there is none (a keys
    directory from before the vault existed)."""
    if not vault_key_ids(directory):
        key_id = add_vault_key(directory)
        log.warning("created card-vault key %s in %s", key_id, Path(directory) / "vault")
    return load_keyring(directory)


class CardVault:
    """Frozen sales' cards in the `card_vault` table, sealed under a keyring."""

    def __init__(self, keyring: VaultKeyring, store: Store) -> None:
        self.keyring = keyring
        self._store = store

    def sealed_row(self, card: CardNumber, event_id: str, now: datetime) -> TableRow:
        """The row to commit with the frozen ledger row `event_id`."""
        # The tokenizer's accessor is the card's only way out; the vault is the
        # second keyed use of the digits, and they go straight into AES-GCM.
        sealed = self.keyring.seal(card.digits_for_tokenizing(), event_id=event_id)
        return table_row(VaultedCard, event_id=event_id, key_id=sealed.key_id,
                         nonce=sealed.nonce, ciphertext=sealed.ciphertext, created_at=now)

    def reveal(self, event_id: str) -> RevealedCard:
        """The card of frozen sale `event_id` (blocking: reads the database)."""
        with self._store.session() as session:
            row = session.scalars(select(VaultedCard)
                                  .where(col(VaultedCard.event_id) == event_id)).first()
        if row is None:
            raise VaultError(f"no card in the vault for {event_id} (frozen before the vault "
                             "existed, or its case was already resolved)")
        digits = self.keyring.open(SealedCard(row.key_id, row.nonce, row.ciphertext),
                                   event_id=event_id)
        return RevealedCard(CardNumber(digits), row.key_id)

    def recoverable(self, event_id: str) -> str:
        """Proves the card of `event_id` opens; a line for the case's record
        (masked PAN and key id) or VaultError."""
        revealed = self.reveal(event_id)
        return f"card {revealed.card.masked} recovered from the vault (key {revealed.key_id})"

    def shred(self, event_id: str) -> bool:
        """Delete the card of `event_id`; False when there was none."""
        with self._store.writing() as session:
            result = session.execute(delete(VaultedCard)
                                     .where(col(VaultedCard.event_id) == event_id))
        return bool(getattr(result, "rowcount", 0))

    def sweep(self) -> int:
        """Delete the cards whose case is resolved (a crash between a
        resolution and its shred leaves one behind); returns how many."""
        resolved = select(col(FreezeCase.id)).where(
            col(FreezeCase.status).in_(RESOLVED_CASE_STATES))
        # A case's id is "case-" + its frozen sale's event_id (pipeline/records.py).
        case_of_row = literal(CASE_ID_PREFIX).concat(col(VaultedCard.event_id))
        with self._store.writing() as session:
            result = session.execute(delete(VaultedCard).where(case_of_row.in_(resolved)))
            in_use = set(session.scalars(select(col(VaultedCard.key_id)).distinct()))
        missing = sorted(in_use - set(self.keyring.key_ids))
        if missing:
            log.error("card vault rows sealed under keys %s that are not in the keyring: "
                      "those cards cannot be returned", ", ".join(missing))
        return int(getattr(result, "rowcount", 0) or 0)


def open_vault(directory: str | Path, store: Store) -> CardVault:
    """The daemon's vault: the keyring (created on first use), the resolved
    cases' cards shredded."""
    vault = CardVault(ensure_keyring(directory), store)
    shredded = vault.sweep()
    if shredded:
        log.info("card vault: %d cards of resolved cases deleted", shredded)
    return vault
