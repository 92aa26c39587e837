"""Which gateway keys the center trusts: center.toml plus registration by command.

`posgw center gateways register ID PUBLIC_KEY.pem` stores a key in the
center database (`center_gateway_keys`), `revoke ID [--fingerprint FP]`
withdraws keys, `list` shows both sources. A key is never trusted on first
use: only center.toml and these commands add one.

The running ingest holds a `GatewayTrust`, which reloads the table

- every `REFRESH_S` seconds, checked lazily as messages arrive, so a
  revocation takes effect within that time without a restart; and
- at once, before quarantining, when a payload's gateway has no trusted key
  or its signature fails under the keys held, so the first event of a
  gateway registered a moment ago (or signed with a key just registered by a
  rotation) is ingested rather than quarantined for good. A reload is one
  small SELECT, cheaper than the quarantine commit that would follow, so
  a flood of unknown or forged payloads at most doubles the work it
  already causes; no rate limit is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from sqlalchemy import inspect
from sqlmodel import col, select

from posgw.center.config import MAX_BRANCH_ID, RegisteredGateway, is_identifier
from posgw.center.db import CenterStore
from posgw.center.models import GatewayKey
from posgw.center.verify import SignatureVerifier, key_fingerprint

#: A revocation reaches the running ingest within this many seconds.
REFRESH_S = 5.0


class RegistrationError(Exception):
    """A key or a gateway id the command line cannot register or revoke."""


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One row of `posgw center gateways list`."""

    gateway_id: str
    branch_id: str  # "" for a registration made before branches were
    fingerprint: str
    source: str  # "center.toml" or "registered"
    registered_at: datetime | None
    revoked_at: datetime | None


def parse_public_key(pem: bytes, source: str) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise RegistrationError(f"{source}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise RegistrationError(f"{source}: not an Ed25519 public key (signing.pub)")
    return key


def register_key(store: CenterStore, gateway_id: str, key: Ed25519PublicKey,
                 branch_id: str) -> bool:
    """Trust `key` for `gateway_id` speaking for `branch_id`; False when it
    already was. Registering a revoked key again trusts it again (an
    explicit operator decision); a gateway serves one branch: moving it to
    another takes revoking its keys first."""
    if not is_identifier(gateway_id):
        raise RegistrationError(f"{gateway_id!r}: a gateway_id is letters, digits, '-', '_' "
                                "or '.' (at most 64)")
    if not is_identifier(branch_id, MAX_BRANCH_ID):
        raise RegistrationError(f"{branch_id!r}: a branch_id is letters, digits, '-', '_' "
                                f"or '.' (at most {MAX_BRANCH_ID})")
    fingerprint, now = key_fingerprint(key), datetime.now(UTC)
    with store.session() as session, session.begin():
        rows = list(session.scalars(select(GatewayKey).where(
            GatewayKey.gateway_id == gateway_id)))
        other = {r.branch_id for r in rows if r.revoked_at is None and r.branch_id} - {branch_id}
        if other:
            raise RegistrationError(f"{gateway_id} is registered for branch "
                                    f"{', '.join(sorted(other))}: revoke its keys first")
        row = next((r for r in rows if r.fingerprint == fingerprint), None)
        if row is not None and row.revoked_at is None and row.branch_id == branch_id:
            return False
        if row is None:
            row = GatewayKey(gateway_id=gateway_id, fingerprint=fingerprint,
                             public_key_pem=_pem(key), registered_at=now)
        row.revoked_at, row.registered_at, row.branch_id = None, now, branch_id
        session.add(row)
    return True


def revoke(store: CenterStore, gateway_id: str, configured: Sequence[RegisteredGateway],
           fingerprint: str | None = None) -> list[str]:
    """Withdraw the gateway's keys (or the one with `fingerprint`), from the
    database and from center.toml alike; returns the fingerprints revoked."""
    now = datetime.now(UTC)
    candidates = {key_fingerprint(gateway.public_key): gateway.public_key
                  for gateway in configured if gateway.id == gateway_id}
    with store.session() as session, session.begin():
        rows = {row.fingerprint: row for row in session.scalars(
            select(GatewayKey).where(GatewayKey.gateway_id == gateway_id))}
        wanted = (set(rows) | set(candidates)) if fingerprint is None else {fingerprint}
        revoked = []
        for print_ in sorted(wanted):
            row = rows.get(print_)
            if row is None and print_ in candidates:  # a center.toml key: record its revocation
                row = GatewayKey(gateway_id=gateway_id, fingerprint=print_,
                                 public_key_pem=_pem(candidates[print_]), registered_at=now)
            if row is None or row.revoked_at is not None:
                continue
            row.revoked_at = now
            session.add(row)
            revoked.append(print_)
    return revoked


def trusted_keys(store: CenterStore | None,
                 configured: Sequence[RegisteredGateway]) -> list[TrustedKey]:
    """Every key the center knows of, center.toml's first, with its state."""
    rows = _rows(store)
    stored = {(row.gateway_id, row.fingerprint): row for row in rows}
    listed: list[TrustedKey] = []
    for gateway in configured:
        print_ = key_fingerprint(gateway.public_key)
        row = stored.pop((gateway.id, print_), None)
        listed.append(TrustedKey(gateway.id, gateway.branch_id, print_, "center.toml", None,
                                 row.revoked_at if row is not None else None))
    listed += [TrustedKey(row.gateway_id, row.branch_id, row.fingerprint, "registered",
                          row.registered_at, row.revoked_at) for row in stored.values()]
    return listed


def build_verifier(store: CenterStore | None,
                   configured: Sequence[RegisteredGateway]) -> SignatureVerifier:
    """center.toml's keys and the registered ones, minus every revoked key."""
    rows = _rows(store)
    revoked_prints = {(row.gateway_id, row.fingerprint) for row in rows if row.revoked_at}
    trusted: dict[str, list[Ed25519PublicKey]] = {}
    revoked: dict[str, list[Ed25519PublicKey]] = {}
    pairs = [(gateway.id, gateway.public_key) for gateway in configured]
    pairs += [(row.gateway_id, _key(row.public_key_pem)) for row in rows]
    for gateway_id, key in pairs:
        withdrawn = (gateway_id, key_fingerprint(key)) in revoked_prints
        (revoked if withdrawn else trusted).setdefault(gateway_id, []).append(key)
    # center.toml's branch wins over a registration's (register_key keeps a
    # gateway's registrations to one branch).
    branches = {row.gateway_id: row.branch_id for row in rows
                if row.branch_id and row.revoked_at is None}
    branches.update({gateway.id: gateway.branch_id for gateway in configured})
    return SignatureVerifier(trusted, revoked, branches)


class GatewayTrust:
    """What the running ingest trusts, reloaded from the database (see the
    module's docstring for when)."""

    def __init__(self, configured: Sequence[RegisteredGateway], store: CenterStore, *,
                 refresh_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._configured = tuple(configured)
        self._store = store
        self._refresh_s = refresh_s
        self._clock = clock
        self._loaded_at: float | None = None
        self.verifier = SignatureVerifier({}, branches={})
        self.reloads = 0

    def stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self._refresh_s

    def reload(self) -> None:
        """Blocking (a database read): call it from a worker thread."""
        self.verifier = build_verifier(self._store, self._configured)
        self._loaded_at = self._clock()
        self.reloads += 1

    def verify(self, payload: Any) -> None:
        self.verifier.verify(payload)


def _rows(store: CenterStore | None) -> list[GatewayKey]:
    if store is None or not inspect(store.engine).has_table(GatewayKey.__tablename__):
        return []  # a database from before registration by command: nothing registered
    with store.session() as session:
        return list(session.scalars(select(GatewayKey).order_by(col(GatewayKey.id))))


def _key(pem: str) -> Ed25519PublicKey:
    key = load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):  # only register_key writes rows: cannot happen
        raise ValueError("center_gateway_keys holds a key that is not Ed25519")
    return key


def _pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
