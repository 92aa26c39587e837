"""Every scenario, terminal simulator -> acquirer simulator over loopback TCP (iso87-binary)."""

from __future__ import annotations

import asyncio

import pytest

from posgw.simulator.scenarios import SCENARIOS, ScenarioResult, run_scenario
from tests.simulator.conftest import acquirer_context

#: line-noise needs a frame check: iso87-binary messages in DLE/CRC framing (ecr-zvt-crc).
PROFILE_FOR = {"line-noise": "ecr-zvt-crc"}


def run(name: str) -> ScenarioResult:
    async def main() -> ScenarioResult:
        async with acquirer_context(PROFILE_FOR.get(name, "iso87-binary")) as (ctx, _):
            return await run_scenario(name, ctx)

    return asyncio.run(main())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_meets_its_checks(name: str) -> None:
    outcome = run(name)
    assert not outcome.skipped
    assert outcome.checks, "a scenario must check something"
    assert outcome.passed, [c.description for c in outcome.checks if not c.passed]


def test_wrong_pin_then_right_gives_three_55_then_75() -> None:
    assert run("wrong-pin-then-right").codes == ["55", "55", "55", "75"]


def test_no_response_sends_a_reversal_before_repeating() -> None:
    kinds = [exchange.kind for exchange in run("no-response-reversal").exchanges]
    assert kinds == ["purchase", "reversal", "purchase (repeat)"]


def test_line_noise_is_skipped_on_a_profile_without_frame_check() -> None:
    async def main() -> ScenarioResult:
        async with acquirer_context("iso87-binary") as (ctx, _):
            return await run_scenario("line-noise", ctx)

    assert asyncio.run(main()).skipped


def test_every_scenario_has_a_help_paragraph() -> None:
    assert all(len(s.summary) > 40 for s in SCENARIOS.values())


def test_all_scenarios_in_sequence_pass_against_one_acquirer() -> None:
    # One context: the terminals it opens share a STAN sequence, so a later
    # scenario's request is never taken for an earlier one's retransmission.
    async def main() -> list[ScenarioResult]:
        async with acquirer_context() as (ctx, _):
            return [await run_scenario(name, ctx) for name in SCENARIOS]

    failed = [r.name for r in asyncio.run(main()) if not (r.passed or r.skipped)]
    assert failed == []
