"""Tests of step sizing: hand-computed detection and pass times, the 100% step, warnings against the
progress deadline, plan's sizing rows and latency-bucket warning, and agreement with the benchmark
(the real judge fed simulated Prometheus counts)."""

from __future__ import annotations

import math
import statistics
from datetime import timedelta
from typing import Any

import pytest

from rollout.core.judging.evidence import SUSTAIN_S
from rollout.core.judging.likelihoods import canary_share_of_events, fail_alternatives
from rollout.core.planning import plan
from rollout.core.sizing import size_step
from rollout.policy.analysis import Analysis
from rollout.policy.models import Rollout
from tests.bench.judge_bench import Policy, Scenario, run_batch
from tests.bench.peers import Ours
from tests.bench.traffic import World

SLOS: dict[str, Any] = {"errorRate": {"max": "1%"}, "latency": {"max": "300ms"}}
POLICY = Analysis.model_validate({"slos": SLOS, "sequential": {"dispersion": 0}})


def _kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def test_relative_detection_matches_hand_computation() -> None:
    sizing = size_step(POLICY, 10, 200.0, weight_steps=4)
    needed = math.log(4 / 0.005) + math.log(1 / dict(fail_alternatives(POLICY.sequential))[2.0])
    events = 200 * 30 * 0.005 * (0.1 * 2 + 0.9)  # per 30 s interval, canary at 2x a 0.5% stable
    per_interval = events * _kl(canary_share_of_events(0.1, 2.0), 0.1)
    assert sizing.test == "relative"
    assert sizing.evidence_needed == pytest.approx(needed)
    assert sizing.seconds_needed == math.ceil(needed / per_interval) * 30
    assert sizing.canary_requests_needed == pytest.approx(sizing.seconds_needed * 20)
    assert sizing.judgeable
    assert sizing.warning == ""


def test_dispersion_makes_big_intervals_worth_less() -> None:
    plain = size_step(POLICY, 10, 2000.0)
    spread = size_step(Analysis.model_validate({"slos": SLOS}), 10, 2000.0)
    assert plain.seconds_needed is not None
    assert spread.seconds_needed is not None
    assert spread.seconds_needed > plain.seconds_needed


def test_full_weight_uses_the_absolute_test_and_needs_the_sustain_time() -> None:
    sizing = size_step(POLICY, 100, 2000.0)
    assert sizing.test == "absolute"
    assert sizing.seconds_needed is not None
    assert sizing.seconds_needed >= SUSTAIN_S
    assert sizing.pass_seconds_needed is not None
    assert sizing.pass_seconds_needed <= 120


def test_a_healthy_canary_passes_faster_with_more_traffic_and_weight() -> None:
    times = [size_step(POLICY, w, rps).pass_seconds_needed for rps in (20.0, 200.0) for w in (10, 50)]
    assert all(t is not None for t in times)
    slow10, slow50, fast10, fast50 = (t or 0.0 for t in times)
    assert slow10 > slow50
    assert slow10 > fast10 >= fast50


@pytest.mark.parametrize(
    ("weight", "rps", "options", "words"),
    [
        (0, 200.0, {}, "the canary gets no traffic"),
        (100, 200.0, {"mode": "relative"}, "mode relative and stable has no traffic"),
        (5, 2.0, {}, "cannot tell a 2x errorRate regression within the progress deadline 30m"),
        (5, 2.0, {}, "passes a healthy canary in"),
    ],
)
def test_warnings(weight: int, rps: float, options: dict[str, Any], words: str) -> None:
    policy = Analysis.model_validate({"slos": SLOS, "sequential": options})
    sizing = size_step(policy, weight, rps)
    assert words in sizing.warning
    assert not sizing.judgeable


def _rollout(steps: list[dict[str, Any]], latency_max: str = "300ms") -> Rollout:
    return Rollout.model_validate(
        {
            "apiVersion": "delivery.rollout.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "r"},
            "spec": {
                "router": {"gatewayRoute": {"name": "gr"}},
                "stable": "v1",
                "canary": "v2",
                "steps": steps,
                "analysis": {"slos": {"errorRate": {"max": "1%"}, "latency": {"max": latency_max}}},
            },
        }
    )


def test_plan_sizes_every_weight_step_and_warns_about_the_latency_buckets() -> None:
    schedule = plan(_rollout([{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"setWeight": 100}]), rps=200.0)
    sized = [r.sizing for r in schedule.steps if r.sizing is not None]
    assert [s.weight for s in sized] == [10, 100]
    assert schedule.expected_time_to_promote is not None
    assert schedule.expected_time_to_promote >= schedule.min_time_to_promote
    assert any("300ms is not a histogram bucket bound" in w for w in schedule.warnings)
    exact = plan(_rollout([{"setWeight": 100}], latency_max="250ms"), buckets_ms=(100.0, 250.0))
    assert not any("bucket" in w for w in exact.warnings)


def _median(values: list[float | None]) -> float:
    return statistics.median(v for v in values if v is not None)


def test_sizing_agrees_with_the_benchmark() -> None:
    """One step at 10% of 200 req/s, through the real judge on simulated Prometheus counts: the
    median time to catch 2x and to pass a healthy canary are within a factor 1.5 of the sizing."""
    analysis = Analysis.model_validate({"slos": {"errorRate": {"max": "1%"}}, "stepDuration": "30s"})
    policy = Policy(analysis=analysis, weights=(10,), deadline_s=7200.0)
    sizing = size_step(analysis, 10, 200.0, weight_steps=1)
    assert sizing.seconds_needed is not None
    assert sizing.pass_seconds_needed is not None
    bad = run_batch(policy, Scenario("2x", World(200.0, canary_error_ratio=2.0), False), 7, 60, Ours(analysis))
    detect = _median([r.detect_seconds for r in bad])
    good = run_batch(policy, Scenario("ok", World(200.0), True), 8, 60, Ours(analysis))
    passed = _median([r.seconds for r in good if r.outcome == "promoted"])
    assert sizing.seconds_needed / 1.5 <= detect <= sizing.seconds_needed * 1.5
    assert sizing.pass_seconds_needed / 1.5 <= passed <= sizing.pass_seconds_needed * 1.5
    assert timedelta(seconds=detect) < timedelta(minutes=30)
