"""Tests of step sizing: hand-computed cases, warnings for steps too short to judge, and agreement
with the benchmark's Monte Carlo of the real judge (median time to detect a 2x regression)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from rollout.core.sizing import size_step
from rollout.policy.models import Analysis
from tests.bench.judge_bench import INTERVAL_S, Scenario, sequential_rollback, simulate

SLOS: dict[str, Any] = {"errorRate": {"max": "1%"}, "latency": {"max": "300ms"}}
POLICY = Analysis.model_validate({"judge": "sequential", "slos": SLOS})
HALF_HOUR = timedelta(minutes=30)


def _kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def test_relative_step_matches_hand_computation() -> None:
    sizing = size_step(POLICY, 10, 200.0, HALF_HOUR)
    # needed = ln(1/(0.9*0.005)) + ln(1/(0.5 + 0.5/16)); share 0.1, p0 = 0.1, p1 = 0.2/1.1
    needed = math.log(1 / 0.0045) + math.log(1 / (0.5 + 0.5 / 16))
    per_second = 200 * 0.005 * (0.2 + 0.9) * _kl(0.2 / 1.1, 0.1)
    assert sizing.test == "relative"
    assert sizing.evidence_needed == pytest.approx(needed)
    assert sizing.canary_requests_needed == pytest.approx(needed / per_second * 20)
    assert sizing.seconds_needed == math.ceil(needed / per_second / 30) * 30 == 180
    assert sizing.judgeable
    assert sizing.warning == ""
    assert sizing.time_needed == timedelta(minutes=3)


def test_full_weight_uses_the_absolute_test() -> None:
    sizing = size_step(POLICY, 100, 20.0, HALF_HOUR)
    needed = math.log(1 / (0.1 * 0.005))
    assert sizing.test == "absolute"
    assert sizing.evidence_needed == pytest.approx(needed)
    assert sizing.canary_requests_needed == pytest.approx(needed / _kl(0.02, 0.01))


def test_short_step_at_low_traffic_warns() -> None:
    sizing = size_step(POLICY, 5, 2.0, HALF_HOUR)
    assert not sizing.judgeable
    assert sizing.seconds_needed is not None
    assert sizing.seconds_needed > 1800
    assert "too short to judge" in sizing.warning
    assert "30m" in sizing.warning


@pytest.mark.parametrize(
    ("weight", "rps", "options", "reason"),
    [
        (0, 200.0, {}, "no traffic at weight 0"),
        (100, 200.0, {"mode": "relative"}, "mode: relative"),
        (10, 0.0, {}, "no expected events"),
    ],
)
def test_steps_that_can_never_judge(weight: int, rps: float, options: dict[str, Any], reason: str) -> None:
    analysis = Analysis.model_validate({"judge": "sequential", "slos": SLOS, "sequential": options})
    sizing = size_step(analysis, weight, rps, HALF_HOUR)
    assert not sizing.judgeable
    assert sizing.seconds_needed is None
    assert sizing.canary_requests_needed is None
    assert "can never judge" in sizing.warning
    assert reason in sizing.warning


def test_no_slo_can_never_judge() -> None:
    sizing = size_step(Analysis.model_validate({"judge": "sequential"}), 10, 100.0)
    assert "nothing to judge" in sizing.warning


def test_more_traffic_or_weight_never_needs_more_time() -> None:
    times = [size_step(POLICY, w, rps).seconds_needed for w in (5, 10, 25, 50) for rps in (20.0, 200.0)]
    assert all(t is not None for t in times)
    by_weight = [size_step(POLICY, w, 200.0).seconds_needed or 0 for w in (5, 10, 25, 50)]
    assert by_weight == sorted(by_weight, reverse=True)


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="weight"):
        size_step(POLICY, 101, 1.0)
    with pytest.raises(ValueError, match="rps"):
        size_step(POLICY, 10, -1.0)


@pytest.mark.parametrize("share", [0.05, 0.1, 0.25])
def test_prediction_matches_the_simulated_median_time_to_detect(share: float) -> None:
    # 400 runs of the judge's replica at 200 req/s, stable 0.5% = SLO/2, canary 2x: the predicted
    # time (Wald's approximation) is within 40% of the simulated median.
    first = sequential_rollback(simulate(Scenario(200, share, 2.0, 1.0), 400, 60, seed=3), POLICY, share)
    assert (first > 0).mean() > 0.99
    median_s = float(np.median(first[first > 0])) * INTERVAL_S
    predicted = size_step(POLICY, round(share * 100), 200.0, HALF_HOUR).seconds_needed
    assert predicted is not None
    assert 0.6 * predicted <= median_s <= 1.4 * predicted
