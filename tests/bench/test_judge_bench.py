"""The benchmark's vectorised replica must agree with the real ``judge_sequential``, interval for
interval, or the benchmark table would not be about our judge."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from rollout.core.judging.sequential import judge_sequential

from rollout.core.states import ArmCounts, JudgeMemory, MetricsSample, Outcome, VerdictKind
from rollout.policy.models import Analysis
from tests.bench.judge_bench import Counts, Scenario, sequential_rollback, simulate


def _real_first_fail(counts: Counts, analysis: Analysis, share: float) -> list[int]:
    out: list[int] = []
    for run in range(counts.canary_requests.shape[0]):
        memory, first = JudgeMemory(), 0
        for t in range(counts.canary_requests.shape[1]):
            sample = MetricsSample(
                Outcome.OK,
                ArmCounts(
                    float(counts.canary_requests[run, t]),
                    float(counts.canary_errors[run, t]),
                    float(counts.canary_slow[run, t]),
                ),
                ArmCounts(
                    float(counts.stable_requests[run, t]),
                    float(counts.stable_errors[run, t]),
                    float(counts.stable_slow[run, t]),
                ),
            )
            verdict, memory = judge_sequential(analysis, memory, sample, share)
            if verdict.kind is VerdictKind.FAIL:
                first = t + 1
                break
        out.append(first)
    return out


def _with_stable_gaps(counts: Counts, seed: int) -> Counts:
    """Zero the stable arm in some intervals so the absolute fallback is exercised too."""
    gaps = np.random.default_rng(seed).random(counts.stable_requests.shape) < 0.3
    zero = np.zeros_like(counts.stable_requests)
    return Counts(
        counts.canary_requests,
        counts.canary_errors,
        counts.canary_slow,
        np.where(gaps, zero, counts.stable_requests),
        np.where(gaps, zero, counts.stable_errors),
        np.where(gaps, zero, counts.stable_slow),
    )


SLOS: dict[str, Any] = {"errorRate": {"max": "1%"}, "latency": {"max": "300ms"}}


@pytest.mark.parametrize(
    ("scenario", "options", "gaps"),
    [
        (Scenario(200, 0.05, 2.0, 1.0), {}, False),
        (Scenario(20, 0.25, 5.0, 1.0), {}, True),
        (Scenario(20, 0.1, 1.0, 1.2), {"alpha": 0.05, "tolerance": 1.1}, False),
        (Scenario(20, 0.5, 3.0, 1.0), {"mode": "absolute"}, False),
        (Scenario(20, 0.5, 3.0, 1.0), {"mode": "relative"}, True),
    ],
)
def test_replica_agrees_with_the_real_judge(scenario: Scenario, options: dict[str, Any], gaps: bool) -> None:
    analysis = Analysis.model_validate({"judge": "sequential", "slos": SLOS, "sequential": options})
    counts = simulate(scenario, runs=25, intervals=30, seed=7)
    if gaps:
        counts = _with_stable_gaps(counts, seed=8)
    replica = sequential_rollback(counts, analysis, scenario.share).tolist()
    real = _real_first_fail(counts, analysis, scenario.share)
    assert replica == real
    assert any(real)  # the comparison covered failures, not just all-zero rows
