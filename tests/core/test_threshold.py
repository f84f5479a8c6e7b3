"""Tests of the fixed-threshold judge: minRequests counted at this step, failures counted by the
judge towards failureLimit, honest latency buckets, intervals spanning a weight change, custom
metrics and noData (shared with the sequential judge)."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.core.readings import Outcome
from rollout.core.verdicts import VerdictKind
from tests.core.judge_inputs import Driver, analysis, check

PASS, FAIL, HOLD = VerdictKind.PASS, VerdictKind.FAIL, VerdictKind.HOLD
SATURATION: dict[str, Any] = {"name": "saturation", "query": "s", "max": 0.8}


def threshold(**extra: Any) -> Any:
    return analysis(judge="threshold", **extra)


def test_min_requests_counts_the_steps_at_weight_requests() -> None:
    run = Driver(threshold(min_requests=100), weight=10)
    first = run.tick((60, 0), (540, 2))
    assert first.kind is HOLD
    assert first.summary.startswith("hold: 60 of 100 canary requests judged at 10%")
    second = run.tick((60, 0), (540, 2))
    assert second.kind is PASS
    assert second.enough_data
    assert second.canary is not None
    assert second.canary.requests == 120
    run.move(50)
    assert run.tick((60, 0), (60, 0)).kind is HOLD  # a new step counts afresh


def test_the_step_rate_is_judged_every_tick_and_failures_roll_back_at_the_limit() -> None:
    run = Driver(threshold(failure_limit=2), weight=50)
    first = run.tick((1000, 30, 0, 0), (1000, 5))
    assert (first.kind, first.rollback) == (FAIL, False)
    assert first.summary.startswith("fail: errorRate 3% (30/1,000) above max 1% (1 of 2 failures)")
    err = check(first)
    assert (err.value, err.limit, err.canary_rate, err.test) == (0.03, 0.01, 0.03, "threshold")
    assert run.tick(None).kind is HOLD  # no new data: not counted
    second = run.tick((1000, 0, 0, 0), (1000, 5))  # the step's rate is 1.5%: still above
    assert second.rollback
    assert second.summary.startswith("roll back:")


@pytest.mark.parametrize(
    ("slow", "slow_above", "expected"),
    [(5, 5, PASS), (30, 2, HOLD), (30, 20, FAIL)],
)
def test_latency_fails_on_the_bucket_above_and_passes_on_the_bucket_below(
    slow: int, slow_above: int, expected: VerdictKind
) -> None:
    verdict = Driver(threshold(), weight=50).tick((1000, 0, slow, slow_above), (1000, 0))
    lat = check(verdict, "latency")
    assert lat.verdict is expected
    assert "slower than 250ms" in lat.detail
    assert "slower than 500ms" in lat.detail


def test_an_interval_spanning_the_weight_change_is_judged_for_failures_only() -> None:
    run = Driver(threshold(), weight=50)
    assert run.tick((1000, 0), (1000, 0), at_weight=False).kind is HOLD
    assert run.tick((1000, 50), (1000, 0), at_weight=False).kind is FAIL
    assert run.memory.canary.requests == 0


def test_custom_metrics_are_judged_with_the_same_rule() -> None:
    run = Driver(threshold(metrics=[SATURATION], failure_limit=1), weight=50)
    verdict = run.tick((1000, 0), (1000, 0), custom={"saturation": 0.95})
    assert verdict.rollback
    assert check(verdict, "saturation").verdict is FAIL


@pytest.mark.parametrize(("no_data", "kind"), [("hold", HOLD), ("pass", PASS), ("fail", FAIL)])
def test_no_data_is_the_same_rule_as_the_sequential_judge(no_data: str, kind: VerdictKind) -> None:
    for judge in ("threshold", "sequential"):
        verdict = Driver(analysis(judge=judge, no_data=no_data), weight=50).tick(None, outcome=Outcome.NAN)
        assert verdict.kind is kind
        assert not verdict.enough_data
