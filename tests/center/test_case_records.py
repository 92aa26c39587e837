"""The ingest keeps freeze cases and command replies (SQLite and PostgreSQL):
one row per case with its current state, every transition once, every
reply once; an old transition arriving late never moves a case back."""

from __future__ import annotations

import json
import threading
from typing import Any

from sqlmodel import select

from posgw.center.case_models import CaseTransition, CenterCase, CommandReply
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest, Received
from posgw.center.pg_writer import PostgresWriter
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.security import GatewayKeys
from tests.center.cases import (
    CASE_ID,
    CASES_TOPIC,
    FROZEN_EVENT,
    REPLY_TOPIC,
    evidence,
    reply,
    transition,
)
from tests.center.events import resigned, verifier, wire
from tests.store.pg import scratch_database


def ingest(store: CenterStore, keys: GatewayKeys) -> CenterIngest:
    return CenterIngest(store, verifier(keys, "B001"), MqttConfig("127.0.0.1", 1))


def the_case(store: CenterStore) -> CenterCase:
    with store.session() as session:
        return session.scalars(select(CenterCase).where(CenterCase.case_id == CASE_ID)).one()


def history(store: CenterStore) -> list[str]:
    with store.session() as session:
        return [row.status for row in session.scalars(
            select(CaseTransition).order_by(CaseTransition.seq))]


async def test_a_case_follows_its_transitions_to_its_resolution(
        store: CenterStore, keys: GatewayKeys) -> None:
    center = ingest(store, keys)
    outcomes = [await center.handle(CASES_TOPIC, wire(payload)) for payload in (
        transition(keys, 10, "open"),
        transition(keys, 11, "evidence_submitted", minutes=5, evidence=evidence()),
        transition(keys, 12, "released", minutes=9,
                   tx_event_ids=(FROZEN_EVENT, "ev-resolution")))]
    assert outcomes == ["counted"] * 3  # their seqs are counted for the gap check too
    case = the_case(store)
    assert (case.status, case.branch_id, case.terminal_id, case.rule) == (
        "released", "B001", "T0001", "repeated_card")
    assert (case.amount_minor, case.currency, case.pan_token) == (2002, "EUR", "ab" * 16)
    assert json.loads(case.tx_event_ids) == [FROZEN_EVENT, "ev-resolution"]
    assert [item["filename"] for item in json.loads(case.evidence)] == ["letter.pdf"]
    assert case.opened_at.endswith("T10:00:00.000000Z") and case.last_seq == 12
    assert case.first_response_due_at is not None and case.first_response_due_at > case.opened_at
    assert history(store) == ["open", "evidence_submitted", "released"]


async def test_an_older_transition_arriving_late_does_not_move_the_case_back(
        store: CenterStore, keys: GatewayKeys) -> None:
    center = ingest(store, keys)
    await center.handle(CASES_TOPIC, wire(transition(
        keys, 21, "evidence_submitted", minutes=5, evidence=evidence())))
    await center.handle(CASES_TOPIC, wire(transition(keys, 20, "open")))
    case = the_case(store)
    assert (case.status, case.last_seq) == ("evidence_submitted", 21)
    assert case.opened_at.endswith("T10:00:00.000000Z")  # the open transition's time, though
    assert sorted(history(store)) == ["evidence_submitted", "open"]


async def test_a_redelivered_transition_changes_nothing(
        store: CenterStore, keys: GatewayKeys) -> None:
    center = ingest(store, keys)
    opened = wire(transition(keys, 30, "open"))
    await center.handle(CASES_TOPIC, opened)
    await center.handle(CASES_TOPIC, wire(transition(keys, 31, "open", overdue_at=True)))
    before = the_case(store)
    await center.handle_batch([Received(CASES_TOPIC, opened)] * 2)
    after = the_case(store)
    assert after == before and after.overdue and after.last_seq == 31
    assert history(store) == ["open", "open"]


async def test_evidence_accumulates_whatever_the_order(
        store: CenterStore, keys: GatewayKeys) -> None:
    center = ingest(store, keys)
    second = transition(keys, 42, "evidence_submitted", minutes=7,
                        evidence=evidence("ef" * 32, "scan.png"))
    first = transition(keys, 41, "evidence_submitted", minutes=5, evidence=evidence())
    result = await center.handle_batch([Received(CASES_TOPIC, wire(second)),
                                        Received(CASES_TOPIC, wire(first))])
    assert result.outcomes == ["counted", "counted"]
    names = sorted(item["filename"] for item in json.loads(the_case(store).evidence))
    assert names == ["letter.pdf", "scan.png"]


async def test_command_replies_are_kept_once(store: CenterStore, keys: GatewayKeys) -> None:
    center = ingest(store, keys)
    answer = wire(reply(keys, 50, "0b7c1f1e-8c1e-4c3e-9f4f-5b8e2c1a9d00"))
    await center.handle(REPLY_TOPIC, answer)
    await center.handle(REPLY_TOPIC, answer)
    with store.session() as session:
        rows = list(session.scalars(select(CommandReply)))
    assert [(row.command_id, row.outcome, row.detail, row.branch_id) for row in rows] == [
        ("0b7c1f1e-8c1e-4c3e-9f4f-5b8e2c1a9d00", "done", "case released", "B001")]


async def test_a_case_with_a_bad_signature_is_quarantined_not_kept(
        store: CenterStore, keys: GatewayKeys) -> None:
    forged = {**transition(keys, 60, "released"), "amount_minor": 1}
    assert await ingest(store, keys).handle(CASES_TOPIC, wire(forged)) == "quarantined"
    with store.session() as session:
        assert session.scalars(select(CenterCase)).first() is None


async def test_a_signed_case_the_tables_cannot_hold_is_counted_not_kept(
        store: CenterStore, keys: GatewayKeys) -> None:
    """A trusted gateway's bug (a leap second, an amount past 64 bits) must not
    stop the ingest: the transition is skipped, its seq counted, the rest kept."""
    center = ingest(store, keys)
    bad_day = {**transition(keys, 70, "open"), "occurred_at": "2026-12-07t10:00:60z"}
    huge = {**transition(keys, 71, "open"), "amount_minor": 2**70}
    result = await center.handle_batch([
        Received(CASES_TOPIC, resigned(keys, bad_day)), Received(CASES_TOPIC, resigned(keys, huge)),
        Received(CASES_TOPIC, wire(transition(keys, 72, "open")))])
    assert result.outcomes == ["counted"] * 3
    assert the_case(store).last_seq == 72 and history(store) == ["open"]


def test_two_center_processes_folding_one_case_at_once_agree(keys: GatewayKeys) -> None:
    """On PostgreSQL, center processes on a shared subscription may get one
    case's transitions at the same moment: the row lock makes them take
    turns, so the case ends at the highest seq with every evidence file
    (read-fold-write without the lock loses one of the two)."""
    with scratch_database() as url:
        store = CenterStore(url)
        conninfo = store.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        writers = [PostgresWriter(conninfo) for _ in range(2)]
        try:
            for round_ in range(10):
                case_id, seq = f"case-race-{round_}", 100 + 3 * round_
                writers[0].quarantine([], recorded=[transition(keys, seq, "open",
                                                               case_id=case_id)])
                racing = [transition(keys, seq + n, "evidence_submitted", minutes=n,
                                     case_id=case_id, evidence=evidence(f"{seq + n:064x}"))
                          for n in (1, 2)]
                race(writers, racing)
                with store.session() as session:
                    case = session.get(CenterCase, case_id)
                assert case is not None and case.last_seq == seq + 2
                assert len(json.loads(case.evidence)) == 2, round_
        finally:
            for writer in writers:
                writer.close()
            store.close()


def race(writers: list[PostgresWriter], payloads: list[dict[str, Any]]) -> None:
    """Each writer records its payload, both starting at the same moment."""
    start = threading.Barrier(len(writers))

    def write(writer: PostgresWriter, payload: dict[str, Any]) -> None:
        start.wait()
        writer.quarantine([], recorded=[payload])

    threads = [threading.Thread(target=write, args=pair)
               for pair in zip(writers, payloads, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
