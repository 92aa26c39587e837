"""The acquirer simulator answers each card's state over a real loopback TCP connection."""

from __future__ import annotations

import asyncio

import pytest

from posgw.simulator import cards as demo
from posgw.simulator.acquirer import Fault, FaultKind
from posgw.simulator.terminal import NO_RESPONSE, Exchange
from tests.simulator.conftest import acquirer_context


def purchase(pan: str, amount: int, *, pin: str | None = None, before: int = 0) -> Exchange:
    """One purchase after `before` approved 10.00 purchases on the same card."""

    async def main() -> Exchange:
        async with acquirer_context() as (ctx, _), ctx.terminal() as terminal:
            for _ in range(before):
                await terminal.purchase(pan, 10_00)
            return await terminal.purchase(pan, amount, pin=pin)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("pan", "amount", "pin", "code"),
    [
        (demo.VISA_OK, 10_00, None, "00"),  # funded, right PIN
        (demo.VISA_LOW, 5000_00, None, "51"),  # more than the balance
        (demo.VISA_OK, 10_00, "0000", "55"),  # wrong PIN
        (demo.UNIONPAY_BLOCKED, 10_00, None, "75"),  # PIN tries exceeded earlier
        (demo.MASTERCARD_LIMITED, 1000_01, None, "61"),  # over the per-transaction limit
        (demo.VISA_ISSUER_DOWN, 10_00, None, "91"),  # issuer inoperative
    ],
)
def test_purchase_answer_follows_card_state(pan: str, amount: int, pin: str | None,
                                            code: str) -> None:
    assert purchase(pan, amount, pin=pin).response_code == code


def test_fourth_approval_within_window_gets_65() -> None:
    assert purchase(demo.MASTERCARD_FREQUENT, 10_00, before=3).response_code == "65"


def test_echo_is_answered_00() -> None:
    async def main() -> Exchange:
        async with acquirer_context() as (ctx, _), ctx.terminal() as terminal:
            return await terminal.echo()

    assert asyncio.run(main()).response_code == "00"


def test_reversal_restores_the_balance_of_a_processed_purchase() -> None:
    async def main() -> tuple[int, int]:
        async with acquirer_context() as (ctx, server), ctx.terminal() as terminal:
            before = ctx.balance(demo.VISA_OK)
            server.inject(Fault(FaultKind.DROP_RESPONSE, "0200"))
            terminal.max_repeats = 1
            await terminal.purchase(demo.VISA_OK, 70_00)
            return before or 0, ctx.balance(demo.VISA_OK) or 0

    before, after = asyncio.run(main())
    assert before - after == 70_00  # dropped one reversed, the repeat charged once


def test_dropped_response_is_a_timeout_for_the_terminal() -> None:
    async def main() -> Exchange:
        async with acquirer_context() as (ctx, server), ctx.terminal() as terminal:
            server.inject(Fault(FaultKind.DROP_RESPONSE, "0800"))
            terminal.max_repeats = 0
            return await terminal.echo()

    assert asyncio.run(main()).note == NO_RESPONSE


def test_settlement_with_wrong_totals_gets_95() -> None:
    async def main() -> Exchange:
        async with acquirer_context() as (ctx, _), ctx.terminal() as terminal:
            await terminal.purchase(demo.VISA_OK, 10_00)
            terminal.totals = type(terminal.totals)()  # forget the purchase
            return await terminal.settle()

    assert asyncio.run(main()).response_code == "95"
