"""A case's state folded from its transitions does not depend on the order
they arrive in, nor on repeats (center/case_state.py; pure)."""

from __future__ import annotations

from functools import reduce
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from posgw.center.case_state import CaseState, fold, normal_time

STEPS: list[dict[str, Any]] = [
    {"seq": 10, "status": "open", "occurred_at": "2026-12-01T10:00:00Z",
     "tx_event_ids": ["ev-1"]},
    {"seq": 11, "status": "evidence_submitted", "occurred_at": "2026-12-01T11:00:00.5Z",
     "tx_event_ids": ["ev-1"], "evidence": {"sha256": "a" * 64, "submitted_at": "2026-12-01"}},
    {"seq": 12, "status": "evidence_submitted", "occurred_at": "2026-12-01T12:00:00Z",
     "tx_event_ids": ["ev-1"], "evidence": {"sha256": "b" * 64, "submitted_at": "2026-12-02"}},
    {"seq": 13, "status": "released", "occurred_at": "2026-12-01T13:00:00Z",
     "tx_event_ids": ["ev-1", "ev-2"]},
]


def payload(step: dict[str, Any]) -> dict[str, Any]:
    return {"case_id": "case-ev-1", "branch_id": "B001", "gateway_id": "gw-1",
            "terminal_id": "T0001", "rule": "rapid_repeat", "amount_minor": 2002,
            "currency": "EUR", "pan_token": "ab" * 16,
            "first_response_due_at": "2026-12-02T10:00:00Z",
            "expires_at": "2026-12-31T10:00:00Z", **step}


def folded(steps: list[dict[str, Any]]) -> CaseState | None:
    return reduce(lambda state, step: fold(state, payload(step)), steps, None)


@given(st.permutations(STEPS), st.lists(st.sampled_from(STEPS), max_size=4))
def test_any_order_and_any_repeats_give_the_same_case(
        order: list[dict[str, Any]], repeats: list[dict[str, Any]]) -> None:
    state = folded([*order, *repeats])
    assert state == folded(STEPS)
    assert state is not None
    assert (state.status, state.last_seq, state.tx_event_ids) == ("released", 13,
                                                                  ("ev-1", "ev-2"))
    assert [item["sha256"][0] for item in state.evidence] == ["a", "b"]
    assert state.opened_at == "2026-12-01T10:00:00.000000Z"


def test_times_of_one_width_sort_as_they_read() -> None:
    whole, fraction = normal_time("2026-12-01T10:00:01Z"), normal_time("2026-12-01T10:00:00.5Z")
    assert fraction < whole and normal_time("2026-12-01T11:00:00+01:00") == \
        "2026-12-01T10:00:00.000000Z"
