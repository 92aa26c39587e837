"""A freeze case's life against a real SQLite store, the real pipeline and the
case service, on a clock the tests move forward instead of sleeping:
evidence, first-response deadline and overdue notice, expiry, and the case.v1
events each transition commits (checked against schemas/case.v1.json)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from posgw.gateway.authorize import StandInAuthorizer
from posgw.gateway.case_policy import CasePolicy
from posgw.gateway.cases import CaseService
from posgw.gateway.evidence import EvidenceError, EvidenceStore
from posgw.gateway.metrics import GatewayMetrics
from posgw.gateway.pipeline import GatewayIdentity, Pipeline
from posgw.gateway.profiles import load_profile
from posgw.gateway.risk import RiskEngine
from posgw.gateway.security import generate_keys, load_keys
from posgw.gateway.security.tokens import PanTokenizer
from posgw.gateway.store import FreezeCase, GroupCommitter, LedgerEntry, OutboxEvent, Store
from posgw.gateway.store.models import CaseEvidence
from posgw.gateway.store.reports import terminal_statement
from posgw.gateway.terminals import TerminalLine, TerminalRegistry
from posgw.simulator import cards as demo
from posgw.simulator.requests import RequestBuilder
from posgw.simulator.shifted_clock import ShiftedClock

PROFILE = load_profile("iso87-ascii")
LISTENER = TerminalLine(PROFILE, "tcp", register_unknown=True, max_terminals=10)
CARDS = {card.pan: card for card in demo.demo_cards()}
POLICY = CasePolicy(first_response=timedelta(hours=24), expire_after=timedelta(days=30))
HOUR = 3600.0
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
jsonschema = pytest.importorskip("jsonschema")


@dataclass
class Desk:
    """The pieces a case goes through, sharing one store and one movable clock."""

    store: Store
    pipeline: Pipeline
    cases: CaseService
    clock: ShiftedClock
    files: EvidenceStore
    terminal: RequestBuilder

    async def freeze(self, pan: str = demo.VISA_OK) -> FreezeCase:
        """Three swipes of one card within minutes: the third approval is frozen."""
        for step in range(3):
            request = self.terminal.purchase(CARDS[pan], 20_00 + step)
            assert (await self.pipeline.handle(request, LISTENER)).text(39) == "00"
        return self.case()

    def case(self) -> FreezeCase:
        with self.store.session() as session:
            return session.scalars(select(FreezeCase).order_by(
                FreezeCase.opened_at.desc())).first()  # type: ignore[union-attr]

    def rows(self, model: type) -> list[Any]:
        with self.store.session() as session:
            return list(session.scalars(select(model)))

    def case_events(self) -> list[dict[str, Any]]:
        return [row.payload for row in sorted(self.rows(OutboxEvent), key=lambda r: r.seq)
                if row.payload["schema"] == "case.v1"]


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    clock = ShiftedClock()
    store = Store(f"sqlite:///{tmp_path / 'gw.db'}")
    identity = GatewayIdentity("B001", "gw-1", "pos/v1")
    files = EvidenceStore(tmp_path / "evidence", max_bytes=1 << 20)
    metrics = GatewayMetrics()
    async with GroupCommitter(store) as committer:
        pipeline = Pipeline(store=store, committer=committer, authorizer=StandInAuthorizer(10**9),
                            risk=RiskEngine(), tokenizer=PanTokenizer(b"k" * 32),
                            registry=TerminalRegistry(clock), identity=identity, clock=clock,
                            case_policy=POLICY, metrics=metrics)
        cases = CaseService(store, committer, identity, clock, evidence=files, metrics=metrics)
        yield Desk(store, pipeline, cases, clock, files, RequestBuilder(
            PROFILE.iso8583, terminal_id="T0000001", merchant_id="M00000000000001",
            clock=clock))
    store.close()


def valid_case_event(payload: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The payload as the forwarder would publish it, checked against case.v1."""
    keys = load_keys(generate_keys(tmp_path / "keys").parent)
    signed = keys.signer.sign(payload)
    schema = json.loads((SCHEMAS / "case.v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(signed)
    return signed


def evidence_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


async def test_a_case_opens_with_its_deadlines_in_the_row_and_the_event(
        desk: Desk, tmp_path: Path) -> None:
    case = await desk.freeze()
    assert case.status == "open"
    assert case.first_response_due_at == case.opened_at + timedelta(hours=24)
    assert case.expires_at == case.opened_at + timedelta(days=30)
    [opened] = desk.case_events()
    assert (opened["status"], opened["overdue"]) == ("open", False)
    assert opened["first_response_due_at"].startswith(
        case.first_response_due_at.isoformat()[:19])  # type: ignore[union-attr]
    valid_case_event(opened, tmp_path)


async def test_first_evidence_moves_the_case_on_and_a_file_is_stored_once(
        desk: Desk, tmp_path: Path) -> None:
    case = await desk.freeze()
    letter = evidence_file(tmp_path, "letter.txt", "The cardholder confirms the purchases.")
    item = desk.files.put(letter, submitted_by="alice")
    first = await desk.cases.submit_evidence(case.id, item.as_dict())
    again = await desk.cases.submit_evidence(case.id, desk.files.put(
        letter, submitted_by="alice").as_dict())
    assert first[0] == again[0] == "done" and "already has" in again[1]
    assert desk.case().status == "evidence_submitted"
    [row] = desk.rows(CaseEvidence)
    assert (row.sha256, row.size_bytes, row.filename, row.submitted_by, row.held_at) == (
        item.sha256, letter.stat().st_size, "letter.txt", "alice", "gateway")
    assert [p.name for p in desk.files.directory.iterdir()] == [item.sha256]
    events = desk.case_events()
    assert [e["status"] for e in events] == ["open", "evidence_submitted"]
    assert events[1]["evidence"]["sha256"] == item.sha256
    valid_case_event(events[1], tmp_path)


async def test_evidence_said_to_be_at_the_gateway_must_be_there_unaltered(
        desk: Desk, tmp_path: Path) -> None:
    case = await desk.freeze()
    item = desk.files.put(evidence_file(tmp_path, "scan.txt", "receipt 1"), submitted_by="bob")
    desk.files.path_for(item.sha256).chmod(0o640)
    desk.files.path_for(item.sha256).write_text("receipt 2")  # altered after it was stored
    outcome, detail = await desk.cases.submit_evidence(case.id, item.as_dict())
    assert outcome == "rejected" and "evidence store" in detail
    # Head office's copy: metadata only, recorded as held at the center.
    at_center = {**item.as_dict(), "held_at": "center"}
    assert (await desk.cases.submit_evidence(case.id, at_center))[0] == "done"
    assert [row.held_at for row in desk.rows(CaseEvidence)] == ["center"]


async def test_a_file_showing_a_card_number_is_refused(tmp_path: Path) -> None:
    files = EvidenceStore(tmp_path / "evidence", max_bytes=1 << 20)
    note = evidence_file(tmp_path, "note.txt", f"card {demo.VISA_OK[:4]} {demo.VISA_OK[4:8]} "
                                               f"{demo.VISA_OK[8:12]} {demo.VISA_OK[12:]}")
    with pytest.raises(EvidenceError, match="card number") as refused:
        files.put(note, submitted_by="carol")
    assert demo.VISA_OK not in str(refused.value) and not files.directory.exists()
    # A masked card and a long reference that fails the Luhn check pass.
    masked = evidence_file(tmp_path, "masked.txt", "card 476173******0010, order 1234567890123")
    assert files.put(masked, submitted_by="carol").size_bytes == masked.stat().st_size


async def test_an_open_case_past_its_due_time_is_reported_overdue_once(
        desk: Desk, tmp_path: Path) -> None:
    case = await desk.freeze()
    assert await desk.cases.sweep() == []
    desk.clock.advance(25 * HOUR)
    assert await desk.cases.sweep() == [(case.id, "overdue")]
    assert await desk.cases.sweep() == []  # once
    notice = desk.case_events()[-1]
    assert (notice["status"], notice["overdue"]) == ("open", True)
    valid_case_event(notice, tmp_path)
    assert desk.case().status == "open"  # overdue is a flag, not a state


async def test_a_case_with_evidence_is_not_overdue(desk: Desk, tmp_path: Path) -> None:
    case = await desk.freeze()
    item = desk.files.put(evidence_file(tmp_path, "a.txt", "statement"), submitted_by="dan")
    await desk.cases.submit_evidence(case.id, item.as_dict())
    desk.clock.advance(25 * HOUR)
    assert await desk.cases.sweep() == []


async def test_an_unresolved_case_past_its_expiry_is_expired_and_returned_to_the_card(
        desk: Desk, tmp_path: Path) -> None:
    case = await desk.freeze()
    item = desk.files.put(evidence_file(tmp_path, "b.txt", "statement"), submitted_by="eve")
    await desk.cases.submit_evidence(case.id, item.as_dict())
    desk.clock.advance(31 * 24 * HOUR)
    assert await desk.cases.sweep() == [(case.id, "expired")]
    assert desk.case().status == "expired"
    frozen_id = case.id.removeprefix("case-")
    [refund] = [row for row in desk.rows(LedgerEntry) if row.original_event_id == frozen_id]
    assert (refund.status, refund.kind, refund.amount_minor) == ("refund", "refund", 20_02)
    expired = desk.case_events()[-1]
    assert expired["status"] == "expired" and expired["tx_event_ids"] == [frozen_id,
                                                                          refund.event_id]
    valid_case_event(expired, tmp_path)
    statement = terminal_statement(desk.store, "T0000001")
    assert statement["open_cases"] == 0 and statement["held_amount_minor"] == 0
    assert (await desk.cases.resolve(case.id, "release"))[0] == "rejected"
    assert (await desk.cases.submit_evidence(case.id, item.as_dict()))[0] == "rejected"


async def test_expire_by_command_before_the_deadline_and_twice_creates_one_refund(
        desk: Desk) -> None:
    case = await desk.freeze()
    assert (await desk.cases.resolve(case.id, "expire"))[0] == "done"
    assert (await desk.cases.resolve(case.id, "expire"))[0] == "done"  # a repeated command
    refunds = [row for row in desk.rows(LedgerEntry) if row.status == "refund"]
    assert len(refunds) == 1 and desk.case().status == "expired"
    counted = desk.pipeline.metrics.registry.get_sample_value
    assert counted("posgw_transactions_total", {"outcome": "refund"}) == 1  # once, like the row
    assert counted("posgw_transactions_total", {"outcome": "frozen"}) == 1


async def test_a_resolution_already_in_the_ledger_decides_a_case_left_open_by_a_crash(
        desk: Desk) -> None:
    case = await desk.freeze()
    assert (await desk.cases.resolve(case.id, "release"))[0] == "done"
    with desk.store.writing() as session:  # as if the daemon died before the case update
        row = session.get(FreezeCase, case.id)
        assert row is not None
        row.status = "open"
    outcome, detail = await desk.cases.resolve(case.id, "return_to_card")
    assert outcome == "rejected" and "released" in detail
    assert desk.case().status == "released"
    assert [row.status for row in desk.rows(LedgerEntry) if row.original_event_id] == [
        "settled"]


async def test_the_reply_shows_the_held_amount_in_major_units(desk: Desk) -> None:
    case = await desk.freeze()  # 2002 minor units of EUR held
    outcome, detail = await desk.cases.resolve(case.id, "release")
    assert (outcome, detail) == ("done", f"case {case.id} released: 20.02 EUR")
