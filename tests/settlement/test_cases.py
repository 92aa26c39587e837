"""Complaint cases: opened once per finding, a 24-hour first-response
clock, a resolution recorded with who and when."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session

from posgw.center.db import CenterStore
from posgw.center.settlement.cases import (
    CaseError,
    Finding,
    NoSuchCase,
    case_id,
    is_overdue,
    list_cases,
    open_cases,
    resolve_case,
)

OPENED = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
FINDING = Finding("fee_above_plan", "fee_above_plan|M0001|2026-12-04", "M0001",
                  date(2026, 12, 4), 2_500, "VND", {"pattern": "a rate above the plan"})


def test_a_finding_opens_one_case_with_a_24_hour_clock(store: CenterStore) -> None:
    with store.engine.begin() as conn:
        assert open_cases(conn, [FINDING], OPENED) == 1
        assert open_cases(conn, [FINDING], OPENED + timedelta(hours=1)) == 0
    with Session(store.engine) as session:
        [case] = list_cases(session, only_open=True)
    assert case_id(case.id or 0) == "S-1"
    assert (case.kind, case.amount_minor, case.evidence) == (
        "fee_above_plan", 2_500, {"pattern": "a rate above the plan"})
    due = case.first_response_due_at.replace(tzinfo=case.first_response_due_at.tzinfo or UTC)
    assert due == OPENED + timedelta(hours=24)
    assert not is_overdue(case, OPENED + timedelta(hours=23))
    assert is_overdue(case, OPENED + timedelta(hours=25))


def test_a_resolution_records_its_note_who_and_when_once(store: CenterStore) -> None:
    with store.engine.begin() as conn:
        open_cases(conn, [FINDING], OPENED)
    later = OPENED + timedelta(hours=3)
    with Session(store.engine) as session:
        resolve_case(session, "s-1", "acquirer refunds 2,500 VND on 2026-12-10", "alice", later)
        with pytest.raises(CaseError, match="was resolved"):
            resolve_case(session, "S-1", "again", "bob")
        with pytest.raises(NoSuchCase):
            resolve_case(session, "S-2", "x", "bob")
        with pytest.raises(CaseError, match="--note"):
            resolve_case(session, "S-1", "  ", "bob")
        [case] = list_cases(session)
    assert (case.status, case.resolved_by, case.resolution) == (
        "resolved", "alice", "acquirer refunds 2,500 VND on 2026-12-10")
    assert not is_overdue(case, OPENED + timedelta(days=3))
