"""Signed transaction events as a gateway would publish them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from posgw.center.verify import SignatureVerifier
from posgw.gateway.security import GatewayKeys
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import tx_event
from posgw.protocols.normalize import EntryMode, Transaction, TxKind

#: Yesterday 10:00 UTC: inside the center's accepted window (not in the
#: future, not older than its maximum event age) whenever the suite runs.
DAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                       microsecond=0)
DAY_TEXT = DAY.date().isoformat()
GATEWAY_ID = "gw-1"
#: Where signed_event()'s defaults (branch B001, terminal T0001) are published.
TX_TOPIC = "pos/v1/B001/T0001/tx"


def signed_event(keys: GatewayKeys, n: int, *, branch: str = "B001", terminal: str = "T0001",
                 amount: int = 1250, status: str = "settled") -> dict[str, Any]:
    tx = Transaction(kind=TxKind.PURCHASE, mti="0210", version=1987, amount_minor=amount,
                     currency="EUR", pan_masked="476173******0010", stan=f"{n:06d}",
                     rrn=f"{n:012d}", auth_code="A1B2C3", response_code="00",
                     entry_mode=EntryMode.CHIP, terminal_id=terminal, merchant_id="M0001")
    payload = tx_event(tx, status=status, event_id=f"ev-{branch}-{terminal}-{n}",
                       branch_id=branch, gateway_id=GATEWAY_ID, pan_token="ab" * 16,
                       risk=[], occurred_at=DAY)
    return keys.signer.sign({**payload, "seq": n})


def wire(payload: dict[str, Any]) -> bytes:
    return canonical_json(payload)


def wires(keys: GatewayKeys, numbers: range) -> list[bytes]:
    """Signed events `numbers` of terminal T0001 of branch B001, as published."""
    return [wire(signed_event(keys, n)) for n in numbers]


def verifier(keys: GatewayKeys, branch: str | None = None) -> SignatureVerifier:
    """A center verifier that trusts exactly the test gateway; with `branch`,
    only for that branch (as center.toml's [[gateways]] branch_id)."""
    public = load_pem_public_key(keys.public_key_pem)
    assert isinstance(public, Ed25519PublicKey)
    return SignatureVerifier({GATEWAY_ID: public},
                             branches=None if branch is None else {GATEWAY_ID: branch})


def resigned(keys: GatewayKeys, payload: dict[str, Any]) -> bytes:
    """`payload` (changed by a test) signed again by `keys`, as published."""
    return wire(keys.signer.sign({k: v for k, v in payload.items() if k != "signature"}))
