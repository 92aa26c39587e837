"""confirm.v1: the center's word that it holds a gateway's events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import fastjsonschema
import pytest

from posgw.protocols import contract

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "confirm.v1.json")
                    .read_text(encoding="utf-8"))
VALID = fastjsonschema.compile(SCHEMA)
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def confirmation(stored: list[str], quarantined: dict[str, str] | None = None) -> dict[str, object]:
    return contract.confirmation("B1", "gw-b1-1", stored=stored, quarantined=quarantined or {},
                                 confirm_id="c-1", issued_at=NOW)


def test_a_confirmation_names_stored_and_quarantined_events_and_passes_its_schema() -> None:
    payload = confirmation(["e1", "e2"], {"e3": "occurred_at is older than 30 days"})
    VALID(payload)
    assert payload["stored"] == ["e1", "e2"]
    assert payload["quarantined"] == [{"event_id": "e3",
                                       "reason": "occurred_at is older than 30 days"}]
    assert payload["issued_at"] == "2026-03-01T10:00:00.000Z"


def test_a_long_quarantine_reason_is_cut_to_the_schemas_limit() -> None:
    payload = confirmation([], {"e1": "x" * 500})
    VALID(payload)
    reason = payload["quarantined"][0]["reason"]  # type: ignore[index]
    assert len(reason) == contract.MAX_QUARANTINE_REASON and reason.endswith("...")


@pytest.mark.parametrize("count", [0, contract.MAX_CONFIRMED_IDS + 1])
def test_an_empty_or_oversized_confirmation_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="1 to"):
        confirmation([f"e{i}" for i in range(count)])


def test_the_schema_refuses_a_confirmation_without_its_gateway() -> None:
    payload = confirmation(["e1"])
    del payload["gateway_id"]
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        VALID(payload)
