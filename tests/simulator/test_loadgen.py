"""The load generator against the acquirer simulator, and its exact percentiles."""

from __future__ import annotations

import asyncio

import pytest

from posgw.simulator.loadgen import LoadReport, percentile, run_load
from tests.simulator.conftest import acquirer_context


def test_percentile_is_nearest_rank_of_sorted_samples() -> None:
    samples = [float(n) for n in range(1, 101)]  # 1..100
    assert (percentile(samples, 50), percentile(samples, 95), percentile(samples, 99)) == (
        50.0, 95.0, 99.0)


def test_percentile_of_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_load_reports_a_rate_and_ordered_percentiles() -> None:
    async def main() -> LoadReport:
        async with acquirer_context() as (ctx, _):
            return await run_load(ctx.profile, ctx.connect, terminals=3, rate=20.0,
                                  duration_s=0.5)

    report = asyncio.run(main())
    assert report.sent == 30 and report.answered == 30 and report.approved == 30
    assert report.achieved_rate > 0
    assert report.p50_s is not None and report.p95_s is not None and report.p99_s is not None
    assert 0 < report.p50_s <= report.p95_s <= report.p99_s
