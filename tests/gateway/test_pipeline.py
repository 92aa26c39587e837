"""The request pipeline against a real SQLite store: what each request writes
and answers (DESIGN rules 1, 3, 5)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.gateway.authorize import Authorization, StandInAuthorizer, UpstreamUnavailable
from posgw.gateway.pipeline import GatewayIdentity, Pipeline, RecentResponses, RequestKey
from posgw.gateway.pipeline.outcome import RrnSource
from posgw.gateway.pipeline.warmup import rrn_source, warm_up
from posgw.gateway.profiles import load_profile
from posgw.gateway.risk import Attempt, RiskEngine
from posgw.gateway.security.tokens import PanTokenizer
from posgw.gateway.store import (
    FreezeCase,
    GroupCommitter,
    LedgerEntry,
    OutboxEvent,
    Reconciliation,
    Store,
    UpstreamQueueItem,
)
from posgw.gateway.terminals import TerminalLine, TerminalRegistry
from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import ResponseCategory, Transaction
from posgw.simulator import cards as demo
from posgw.simulator.requests import BatchTotals, RequestBuilder

PROFILE = load_profile("iso87-ascii")
LINE = TerminalLine(PROFILE, "tcp", register_unknown=True, max_terminals=100)  # any id
CARDS = {card.pan: card for card in demo.demo_cards()}
FLOOR = 100_00


class Harness:
    def __init__(self, store: Store, pipeline: Pipeline) -> None:
        self.store, self.pipeline = store, pipeline
        self.terminal = RequestBuilder(PROFILE.iso8583, terminal_id="T0000001",
                                       merchant_id="M00000000000001", clock=SYSTEM_CLOCK)

    async def send(self, request: Message, line: TerminalLine = LINE) -> Message:
        return await self.pipeline.handle(request, line)

    def rows(self, model: type) -> list:  # type: ignore[type-arg]
        with self.store.session() as session:
            return list(session.scalars(select(model)))


class TimingOutAcquirer:
    """The acquirer took the request and never answered."""

    async def authorize(self, transaction: Transaction, request: Message) -> Authorization:
        raise UpstreamUnavailable("no response within 1 s",
                                  Message("0420", {11: "000777", 41: "T0000001",
                                                   90: "0200000777" + "0" * 32}))


async def harness_for(tmp_path: Path, authorizer: object = None, outbox_cap: int = 1000,
                      clock: Clock = SYSTEM_CLOCK,
                      rrns: RrnSource | None = None) -> AsyncIterator[Harness]:
    store = Store(f"sqlite:///{tmp_path / 'gw.db'}")
    async with GroupCommitter(store, outbox_cap=outbox_cap) as committer:
        pipeline = Pipeline(
            store=store, committer=committer,
            # stand-in refunds enabled for the test terminal, up to the floor limit
            authorizer=authorizer or StandInAuthorizer(  # type: ignore[arg-type]
                FLOOR, refund_limits={"T0000001": FLOOR}),
            risk=RiskEngine(), tokenizer=PanTokenizer(b"k" * 32),
            registry=TerminalRegistry(SYSTEM_CLOCK),
            identity=GatewayIdentity("B001", "gw-1", "pos/v1"), clock=clock, rrns=rrns)
        yield Harness(store, pipeline)
    store.close()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Harness]:
    async for harness in harness_for(tmp_path):
        yield harness


async def test_approval_is_one_ledger_row_and_one_outbox_event(gw: Harness) -> None:
    response = await gw.send(gw.terminal.purchase(CARDS[demo.VISA_OK], 12_50))
    assert response.mti == "0210" and response.text(39) == "00" and response.text(38)
    [row] = gw.rows(LedgerEntry)
    [event] = gw.rows(OutboxEvent)
    assert (row.status, row.amount_minor, row.rrn) == ("settled", 12_50, response.text(37))
    assert event.payload["event_id"] == row.event_id and event.payload["seq"] == event.seq
    assert event.topic == "pos/v1/B001/T0000001/tx"


async def test_no_row_or_event_holds_the_pan_track_or_pin_block(gw: Harness) -> None:
    request = gw.terminal.purchase(CARDS[demo.VISA_OK], 10_00)
    await gw.send(request)
    stored = repr(gw.rows(LedgerEntry)) + repr(gw.rows(OutboxEvent))
    assert demo.VISA_OK not in stored
    assert request.text(35) not in stored and "476173******0010" in stored
    assert request.binary(52) is not None and request.binary(52).hex() not in stored


async def test_retransmission_gets_the_stored_response_and_writes_nothing(gw: Harness) -> None:
    request = gw.terminal.purchase(CARDS[demo.VISA_OK], 20_00)
    first, again = await gw.send(request), await gw.send(request)
    assert again.fields == first.fields
    assert len(gw.rows(LedgerEntry)) == 1 and len(gw.rows(OutboxEvent)) == 1


async def test_a_repeat_arriving_while_the_first_is_in_flight_waits_for_it(gw: Harness) -> None:
    request = gw.terminal.purchase(CARDS[demo.VISA_OK], 21_00)
    first, again = await asyncio.gather(gw.send(request), gw.send(request))
    assert again.fields == first.fields
    assert len(gw.rows(LedgerEntry)) == 1


async def test_after_a_restart_the_ledger_answers_the_retransmission(tmp_path: Path) -> None:
    async for gw in harness_for(tmp_path):
        request = gw.terminal.purchase(CARDS[demo.VISA_OK], 22_00)
        first = await gw.send(request)
    async for fresh in harness_for(tmp_path):  # an empty cache: the unique key catches it
        again = await fresh.send(request)
        assert again.fields == first.fields and len(fresh.rows(LedgerEntry)) == 1


async def test_over_the_floor_limit_is_declined_and_still_forwarded(gw: Harness) -> None:
    response = await gw.send(gw.terminal.purchase(CARDS[demo.VISA_OK], FLOOR + 1))
    assert response.text(39) == "61" and not response.text(38)
    [row] = gw.rows(LedgerEntry)
    assert row.status == "declined" and len(gw.rows(OutboxEvent)) == 1


async def test_network_management_is_answered_locally_without_a_record(gw: Harness) -> None:
    response = await gw.send(gw.terminal.echo())
    assert (response.mti, response.text(39), response.text(70)) == ("0810", "00", "301")
    assert gw.rows(LedgerEntry) == [] and gw.rows(OutboxEvent) == []


async def test_refund_and_reversal_are_recorded_with_their_status(gw: Harness) -> None:
    card = CARDS[demo.VISA_OK]
    purchase = gw.terminal.purchase(card, 30_00)
    await gw.send(purchase)
    await gw.send(gw.terminal.refund(card, 5_00))
    await gw.send(gw.terminal.reversal(purchase))
    rows = gw.rows(LedgerEntry)
    assert [r.status for r in rows] == ["settled", "refund", "reversed"]
    assert rows[2].original_event_id == rows[0].event_id


async def test_upstream_timeout_answers_91_and_queues_the_reversal_advice(
        tmp_path: Path) -> None:
    async for gw in harness_for(tmp_path, TimingOutAcquirer()):
        response = await gw.send(gw.terminal.purchase(CARDS[demo.VISA_OK], 40_00))
        assert response.text(39) == "91"
        [row] = gw.rows(LedgerEntry)
        [advice] = gw.rows(UpstreamQueueItem)
        assert row.status == "declined"
        assert advice.mti == "0420" and advice.fields["90"].startswith("0200000777")
        assert "2" not in advice.fields and "35" not in advice.fields  # no card data


async def test_a_full_outbox_refuses_the_sale_and_drops_nothing(tmp_path: Path) -> None:
    async for gw in harness_for(tmp_path, outbox_cap=2):
        card = CARDS[demo.UNIONPAY_OK]  # amounts differ: no freeze, no case event
        codes = [(await gw.send(gw.terminal.purchase(card, (n + 1) * 1_00))).text(39)
                 for n in range(3)]
        assert codes == ["00", "00", "96"]
        assert len(gw.rows(LedgerEntry)) == 2 and len(gw.rows(OutboxEvent)) == 2


async def test_a_terminal_outside_the_allow_list_is_refused(gw: Harness) -> None:
    line = TerminalLine(PROFILE, "tcp", allow=frozenset({"T0000099"}))
    response = await gw.send(gw.terminal.purchase(CARDS[demo.VISA_OK], 1_00), line)
    assert response.text(39) == "58" and gw.rows(LedgerEntry) == []


async def test_a_request_the_normalizer_rejects_gets_a_format_error(gw: Harness) -> None:
    request = gw.terminal.purchase(CARDS[demo.VISA_OK], 1_00)
    request.fields[4] = "12AB00000000"
    response = await gw.send(request)
    assert response.text(39) == "30" and gw.rows(LedgerEntry) == []


async def test_a_third_swipe_within_minutes_is_frozen_and_opens_a_case(gw: Harness) -> None:
    card = CARDS[demo.VISA_OK]
    codes = [(await gw.send(gw.terminal.purchase(card, 7_00 + n))).text(39) for n in range(3)]
    assert codes == ["00", "00", "00"]  # a freeze approves: the funds are held, not refused
    rows = gw.rows(LedgerEntry)
    [case] = gw.rows(FreezeCase)
    assert [r.status for r in rows] == ["settled", "settled", "frozen"]
    assert rows[2].risk == ["rapid_repeat"] and case.rule == "rapid_repeat"
    assert case.evidence["rules"][0]["transactions"][-1] == rows[2].event_id


async def test_warm_up_refills_the_retransmit_cache_and_risk_windows(gw: Harness) -> None:
    card = CARDS[demo.VISA_OK]
    for n in range(2):
        await gw.send(gw.terminal.purchase(card, 9_00 + n))
    [first, _] = gw.rows(LedgerEntry)
    recent, risk = RecentResponses(), RiskEngine()
    warm_up(gw.store, risk, recent, SYSTEM_CLOCK)
    key = RequestKey(first.terminal_id, "2", first.stan, first.transmission_time)
    assert recent.get(key) == first.response_fields
    # The two earlier swipes are back in the windows: a third is frozen at once.
    third = Attempt("ev-3", first.pan_token or "", first.terminal_id, 9_02,
                    SYSTEM_CLOCK.utc_now().timestamp(), outcome=ResponseCategory.APPROVED)
    assert risk.after(third).rules == ("rapid_repeat",)


class WrongPinAcquirer:
    async def authorize(self, transaction: Transaction, request: Message) -> Authorization:
        return Authorization(ResponseCategory.INCORRECT_PIN, "55")


class HoursAgo:
    """The system clock, `hours` back: ledger rows from earlier in the day."""

    def __init__(self, hours: float) -> None:
        self._shift = timedelta(hours=hours)

    def monotonic(self) -> float:
        return time.monotonic()

    def utc_now(self) -> datetime:
        return datetime.now(UTC) - self._shift


async def test_warm_up_brings_back_wrong_pins_from_hours_before(tmp_path: Path) -> None:
    card = CARDS[demo.VISA_OK]
    morning_clock = HoursAgo(20)
    async for morning in harness_for(tmp_path, WrongPinAcquirer(), clock=morning_clock):
        morning.terminal = RequestBuilder(PROFILE.iso8583, terminal_id="T0000001",
                                          merchant_id="M00000000000001", clock=morning_clock)
        for n in range(2):
            assert (await morning.send(morning.terminal.purchase(card, 5_00 + n))).text(39) == "55"
    async for now in harness_for(tmp_path):
        await now.send(now.terminal.purchase(card, 7_00))  # within the hour: replayed too
        token = now.rows(LedgerEntry)[0].pan_token or ""
        risk = RiskEngine()
        warm_up(now.store, risk, RecentResponses(), SYSTEM_CLOCK)
        at = SYSTEM_CLOCK.utc_now().timestamp()
        # The third wrong PIN within 24 h locks the card: the two of the morning count.
        risk.after(Attempt("ev-3", token, "T0000001", 5_02, at,
                           outcome=ResponseCategory.INCORRECT_PIN))
        assert risk.before(Attempt("ev-4", token, "T0000001", 5_03, at + 1)).decline_with \
            is ResponseCategory.PIN_TRIES_EXCEEDED
        assert risk.attempts_in_memory == 2 + 1 + 1 + 1  # the morning's are kept as wrong PINs


async def test_after_a_restart_rrns_continue_past_the_ledgers_highest_of_the_day(
        tmp_path: Path) -> None:
    # Before the restart the gateway ran faster than 1,000 RRNs a second: its
    # serial is past the millisecond of the day a new process would start at.
    ahead = RrnSource(SYSTEM_CLOCK.utc_now().replace(hour=23, minute=59, second=59,
                                                     microsecond=999_000))
    async for before in harness_for(tmp_path, rrns=ahead):
        issued = (await before.send(before.terminal.purchase(CARDS[demo.VISA_OK], 3_00)))
    last = issued.text(37)
    store = Store(f"sqlite:///{tmp_path / 'gw.db'}")
    following = rrn_source(store, SYSTEM_CLOCK).next(SYSTEM_CLOCK.utc_now())
    store.close()
    assert following[:4] == last[:4] and int(following[4:]) == int(last[4:]) + 1


def test_the_serial_starts_past_the_days_highest_rrn_and_the_millisecond_of_the_day() -> None:
    started = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)  # 36,000,000 ms into day 339
    assert RrnSource(started).next(started) == "633936000000"
    assert RrnSource(started, "633990000000").next(started) == "633990000001"
    assert RrnSource(started, "633900000007").next(started) == "633936000000"  # lower
    assert RrnSource(started, "633899999999").next(started) == "633936000000"  # yesterday
    assert RrnSource(started, "63399000004A").next(started) == "633936000000"  # not digits


async def test_a_batch_that_matches_the_ledger_is_closed_with_00(gw: Harness) -> None:
    card = CARDS[demo.VISA_OK]
    sale = gw.terminal.purchase(card, 40_00)
    sale_response = await gw.send(sale)
    await gw.send(gw.terminal.purchase(card, 10_00))
    await gw.send(gw.terminal.refund(card, 5_00))
    await gw.send(gw.terminal.void(card, 40_00, sale_response.text(37)))
    lost = gw.terminal.purchase(card, 7_00)
    await gw.send(lost)
    await gw.send(gw.terminal.reversal(lost))  # never seen approved: counted nowhere
    totals = BatchTotals(debits=2, debits_amount=50_00, credits=1, credits_amount=5_00,
                         debit_reversals=1, debit_reversals_amount=40_00, inquiries=3)
    response = await gw.send(gw.terminal.settlement(totals))
    assert (response.mti, response.text(39)) == ("0510", "00")
    [batch] = gw.rows(Reconciliation)
    assert batch.outcome == "matched" and batch.differences == {}
    # The batch is closed: the next one starts empty.
    assert (await gw.send(gw.terminal.settlement(BatchTotals()))).text(39) == "00"


async def test_a_batch_that_does_not_match_answers_95_and_keeps_the_differences(
        gw: Harness) -> None:
    await gw.send(gw.terminal.purchase(CARDS[demo.VISA_OK], 12_00))
    response = await gw.send(gw.terminal.settlement(BatchTotals(debits=2, debits_amount=24_00)))
    assert response.text(39) == "95"
    [batch] = gw.rows(Reconciliation)
    assert batch.outcome == "mismatched"
    assert batch.differences == {"debits": {"terminal": 2, "ledger": 1},
                                 "debits_amount": {"terminal": 24_00, "ledger": 12_00}}


async def test_warm_up_forgets_sales_that_were_reversed(gw: Harness) -> None:
    card = CARDS[demo.VISA_OK]
    sale = gw.terminal.purchase(card, 15_00)
    await gw.send(sale)
    await gw.send(gw.terminal.reversal(sale))
    risk = RiskEngine()
    warm_up(gw.store, risk, RecentResponses(), SYSTEM_CLOCK)
    [first, _] = gw.rows(LedgerEntry)
    repeat = Attempt("ev-repeat", first.pan_token or "", first.terminal_id, 15_00,
                     SYSTEM_CLOCK.utc_now().timestamp(), outcome=ResponseCategory.APPROVED)
    assert risk.after(repeat).rules == ()  # the honest repeat after a restart: not a duplicate


async def test_a_reversal_of_an_unknown_sale_is_answered_25_and_recorded(gw: Harness) -> None:
    never_seen = gw.terminal.purchase(CARDS[demo.VISA_OK], 18_00)  # lost on its way in
    response = await gw.send(gw.terminal.reversal(never_seen))
    assert response.text(39) == "25"
    [row] = gw.rows(LedgerEntry)
    assert (row.kind, row.status, row.response_code) == ("reversal", "declined", "25")
