"""A center that confirms nothing is reported once past the threshold, in words."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from posgw.gateway.forward.silence import CenterSilence, OutboxSnapshot, silence_text
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import gateway_status

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_the_reason_reads_as_an_operator_would_say_it() -> None:
    assert silence_text(7 * 60 + 12, 1234) == (
        "center has confirmed nothing for 7 min; 1,234 events published and waiting")


def test_silence_needs_both_waiting_events_and_the_threshold() -> None:
    silence = CenterSilence(after_s=300)
    assert not silence.check(silent_for_s=299, published=10, now=START)
    assert not silence.check(silent_for_s=3600, published=0, now=START)  # idle, not silent
    assert silence.check(silent_for_s=420, published=10, now=START)
    assert silence.since == START - timedelta(seconds=420)


def test_the_warning_is_logged_once_per_threshold_and_the_recovery_too(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="posgw.gateway.forward.silence")
    silence = CenterSilence(after_s=300)
    for beat in range(0, 300, 2):  # heartbeats every 2 s for 5 minutes
        silence.check(silent_for_s=300 + beat, published=5,
                      now=START + timedelta(seconds=beat))
    silence.check(silent_for_s=600, published=5, now=START + timedelta(seconds=300))
    silence.check(silent_for_s=1, published=5, now=START + timedelta(seconds=302))
    messages = [record.getMessage() for record in caplog.records]
    assert sum("has confirmed nothing" in m for m in messages) == 2
    assert "center confirms again" in messages[-1] and silence.since is None


@pytest.mark.parametrize("snapshot", [OutboxSnapshot(3, 1234, 431.25, True),
                                      OutboxSnapshot(0, 0, None)])
def test_the_birth_with_outbox_counts_matches_the_gateway_status_schema(
        snapshot: OutboxSnapshot) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMAS / "gateway-status.v1.json").read_text())
    payload = gateway_status("online", last_seq=9, event_id="ev-1", branch_id="B001",
                             gateway_id="gw-1", occurred_at=START, outbox=snapshot.as_payload())
    jsonschema.validate({**payload, "signature": "A" * 88}, schema)
    canonical_json(payload)  # signable: no floats
    assert payload["outbox"]["published_unconfirmed"] == snapshot.published
