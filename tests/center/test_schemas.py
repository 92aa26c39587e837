"""Published payloads match the schemas in schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posgw.gateway.security import generate_keys, load_keys
from posgw.protocols.contract import gateway_status
from tests.center.events import signed_event
from tests.store.rows import NOW

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
jsonschema = pytest.importorskip("jsonschema")


def validator(name: str):  # type: ignore[no-untyped-def]
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_schema_is_valid_draft_2020_12() -> None:
    for path in SCHEMAS.glob("*.json"):
        validator(path.stem)


def test_signed_tx_event_matches_its_schema(tmp_path: Path) -> None:
    keys = load_keys(generate_keys(tmp_path).parent)
    validator("tx-event.v1").validate(signed_event(keys, 7))


def test_tx_event_with_a_clear_pan_is_rejected_by_the_schema(tmp_path: Path) -> None:
    keys = load_keys(generate_keys(tmp_path).parent)
    event = {**signed_event(keys, 7), "pan_masked": "4761739001010010"}
    with pytest.raises(jsonschema.ValidationError):
        validator("tx-event.v1").validate(event)


def test_gateway_status_matches_its_schema(tmp_path: Path) -> None:
    keys = load_keys(generate_keys(tmp_path).parent)
    payload = gateway_status("online", last_seq=3, event_id="ev-1", branch_id="B001",
                             gateway_id="gw-1", occurred_at=NOW)
    validator("gateway-status.v1").validate(keys.signer.sign(payload))
