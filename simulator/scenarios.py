"""The named scenarios: tests, `posgw demo` and `posgw simulate --scenario` share them.

Expected outcomes are those of the demo card set (`simulator.cards`) on a
fresh acquirer simulator; against a gateway whose upstream decides
differently, the checks report what differed. Amounts are minor units.
"""

from __future__ import annotations

from posgw.protocols.framing import Handshake
from posgw.simulator import cards as demo
from posgw.simulator.faulty_transport import CorruptOnce, CutMidFrame
from posgw.simulator.scenario_kit import (
    SCENARIOS,
    Check,
    ScenarioContext,
    ScenarioResult,
    balance_changed_by,
    codes_are,
    result,
    scenario,
)
from posgw.simulator.terminal import LINK_CLOSED, NO_RESPONSE

WRONG_PIN = "0000"
SIX_MINUTES_S = 360.0
SWIPE_INTERVAL_S = 30.0  # four swipes in 90 s: "within two minutes"


@scenario("normal-purchases")
async def normal_purchases(ctx: ScenarioContext) -> ScenarioResult:
    """Three chip-and-PIN purchases on a Visa, a Mastercard and a UnionPay card,
    each within its limits: all approved (00)."""
    async with ctx.terminal() as terminal:
        await terminal.purchase(demo.VISA_OK, 12_50)
        await terminal.purchase(demo.MASTERCARD_LIMITED, 99_99)
        await terminal.purchase(demo.UNIONPAY_OK, 300_00)
        return result("normal-purchases", terminal, codes_are(terminal.exchanges, ["00"] * 3))


@scenario("refund")
async def refund(ctx: ScenarioContext) -> ScenarioResult:
    """A 25.00 purchase and its refund (0200, processing code 200000): both
    approved, and the card's balance is back where it started."""
    before = ctx.balance(demo.VISA_OK)
    async with ctx.terminal() as terminal:
        await terminal.purchase(demo.VISA_OK, 25_00)
        await terminal.refund(demo.VISA_OK, 25_00)
        return result("refund", terminal, codes_are(terminal.exchanges, ["00", "00"]),
                      *balance_changed_by(ctx, demo.VISA_OK, before, 0))


@scenario("void")
async def void(ctx: ScenarioContext) -> ScenarioResult:
    """A 40.00 purchase voided by its RRN (0200, processing code 020000): both
    approved, nothing left charged."""
    before = ctx.balance(demo.VISA_OK)
    async with ctx.terminal() as terminal:
        sale = await terminal.purchase(demo.VISA_OK, 40_00)
        await terminal.void(demo.VISA_OK, 40_00, sale.rrn)
        return result("void", terminal, codes_are(terminal.exchanges, ["00", "00"]),
                      *balance_changed_by(ctx, demo.VISA_OK, before, 0))


@scenario("balance-inquiry")
async def balance_inquiry(ctx: ScenarioContext) -> ScenarioResult:
    """A 0100 balance inquiry (processing code 310000) with PIN: approved, and
    nothing is charged."""
    before = ctx.balance(demo.VISA_OK)
    async with ctx.terminal() as terminal:
        await terminal.balance_inquiry(demo.VISA_OK)
        return result("balance-inquiry", terminal, codes_are(terminal.exchanges, ["00"]),
                      *balance_changed_by(ctx, demo.VISA_OK, before, 0))


@scenario("wrong-pin-then-right")
async def wrong_pin_then_right(ctx: ScenarioContext) -> ScenarioResult:
    """A wrong PIN three times (55, 55, 55; the third blocks the card), then
    the right PIN: refused with 75, PIN tries exceeded."""
    async with ctx.terminal() as terminal:
        for _ in range(3):
            await terminal.purchase(demo.VISA_PIN_TRIES, 10_00, pin=WRONG_PIN)
        await terminal.purchase(demo.VISA_PIN_TRIES, 10_00)
        return result("wrong-pin-then-right", terminal,
                      codes_are(terminal.exchanges, ["55", "55", "55", "75"]))


@scenario("rapid-repeat-swipes")
async def rapid_repeat_swipes(ctx: ScenarioContext) -> ScenarioResult:
    """One card swiped four times on one terminal within two minutes (30 s
    apart on the virtual clock); its issuer allows three approvals per two
    minutes, so the fourth gets 65."""
    async with ctx.terminal() as terminal:
        for swipe in range(4):
            if swipe:
                ctx.clock.advance(SWIPE_INTERVAL_S)
            await terminal.purchase(demo.MASTERCARD_FREQUENT, 15_00)
        return result("rapid-repeat-swipes", terminal,
                      codes_are(terminal.exchanges, ["00", "00", "00", "65"]))


@scenario("descending-trials")
async def descending_trials(ctx: ScenarioContext) -> ScenarioResult:
    """Descending-amount trial swipes on a card with 4850.00 available:
    5000.00 and 4900.00 are declined 51, then 4800.00 is approved."""
    async with ctx.terminal() as terminal:
        for amount in (5000_00, 4900_00, 4800_00):
            await terminal.purchase(demo.VISA_LOW, amount)
        return result("descending-trials", terminal,
                      codes_are(terminal.exchanges, ["51", "51", "00"]))


@scenario("no-response-reversal")
async def no_response_reversal(ctx: ScenarioContext) -> ScenarioResult:
    """The response to a purchase is lost: after its response timeout the
    terminal sends a 0400 reversal, then repeats the purchase under a new
    STAN; the card is charged exactly once."""
    before = ctx.balance(demo.VISA_OK)
    async with ctx.terminal() as terminal:
        terminal.lose_next_responses(1)
        await terminal.purchase(demo.VISA_OK, 60_00)
        kinds = [exchange.kind for exchange in terminal.exchanges]
        return result(
            "no-response-reversal", terminal,
            codes_are(terminal.exchanges, [None, "00", "00"]),
            Check(f"purchase, reversal, repeat (got {kinds})",
                  kinds == ["purchase", "reversal", "purchase (repeat)"]
                  and terminal.exchanges[0].note == NO_RESPONSE),
            *balance_changed_by(ctx, demo.VISA_OK, before, -60_00),
        )


@scenario("retransmit-same-stan")
async def retransmit_same_stan(ctx: ScenarioContext) -> ScenarioResult:
    """A purchase sent twice with the same STAN and transmission time (a
    terminal that did not see its answer): the same response comes back,
    same RRN and auth code, and the card is charged once."""
    before = ctx.balance(demo.VISA_OK)
    async with ctx.terminal() as terminal:
        first = await terminal.purchase(demo.VISA_OK, 33_00)
        again = await terminal.send_again()
        same = (first.stan, first.rrn, first.auth_code) == (again.stan, again.rrn,
                                                             again.auth_code)
        return result("retransmit-same-stan", terminal,
                      codes_are(terminal.exchanges, ["00", "00"]),
                      Check("same STAN, RRN and auth code both times", same),
                      *balance_changed_by(ctx, demo.VISA_OK, before, -33_00))


@scenario("batch-settlement")
async def batch_settlement(ctx: ScenarioContext) -> ScenarioResult:
    """Closes any open batch, then two purchases, a refund and a 0500
    settlement whose totals (fields 74-89) match the host's: 00."""
    async with ctx.terminal() as terminal:
        await terminal.settle()  # close what earlier runs left open; its code is not checked
        await terminal.purchase(demo.VISA_OK, 100_00)
        await terminal.purchase(demo.UNIONPAY_OK, 50_00)
        await terminal.refund(demo.VISA_OK, 20_00)
        await terminal.settle()
        return result("batch-settlement", terminal,
                      codes_are(terminal.exchanges[1:], ["00", "00", "00", "00"]))


@scenario("line-noise")
async def line_noise(ctx: ScenarioContext) -> ScenarioResult:
    """One bit of the purchase frame is flipped on the line: the peer's check
    (LRC or CRC) fails, it NAKs, the terminal's link resends, and the
    purchase is approved once. Needs a profile with ACK/NAK framing."""
    if ctx.profile.framing.handshake is Handshake.NONE:
        return ScenarioResult("line-noise", (), (), skipped="profile has no ACK/NAK frame check")
    async with ctx.terminal(wrap=CorruptOnce) as terminal:
        await terminal.purchase(demo.VISA_OK, 7_50)
        resent = terminal.link_events["Retransmit"]
        return result("line-noise", terminal, codes_are(terminal.exchanges, ["00"]),
                      Check(f"frame resent after NAK (resends: {resent})", resent >= 1))


@scenario("cable-pulled")
async def cable_pulled(ctx: ScenarioContext) -> ScenarioResult:
    """The line drops halfway through a purchase frame; the terminal
    reconnects and makes the purchase again: approved, and the peer is
    still serving."""
    async with ctx.terminal(wrap=CutMidFrame) as terminal:
        first = await terminal.purchase(demo.VISA_OK, 18_00)
        await terminal.attach(await ctx.connect())
        await terminal.purchase(demo.VISA_OK, 18_00)
        return result("cable-pulled", terminal,
                      codes_are(terminal.exchanges, [None, "00"]),
                      Check("first attempt lost with the line", first.note == LINK_CLOSED))


@scenario("honest-retry-after-6-minutes")
async def honest_retry(ctx: ScenarioContext) -> ScenarioResult:
    """The same card and amount again six minutes later (virtual clock, no
    sleeping): a customer's honest second purchase, approved both times,
    with transmission times six minutes apart."""
    async with ctx.terminal() as terminal:
        await terminal.purchase(demo.VISA_OK, 21_00)
        ctx.clock.advance(SIX_MINUTES_S)
        await terminal.purchase(demo.VISA_OK, 21_00)
        return result("honest-retry-after-6-minutes", terminal,
                      codes_are(terminal.exchanges, ["00", "00"]))


async def run_scenario(name: str, ctx: ScenarioContext) -> ScenarioResult:
    """Run one registered scenario by name; KeyError for an unknown one."""
    return await SCENARIOS[name].run(ctx)


__all__ = ["SCENARIOS", "ScenarioContext", "ScenarioResult", "run_scenario"]
