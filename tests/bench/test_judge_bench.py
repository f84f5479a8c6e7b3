"""Fast checks of the judge benchmark: the simulated Prometheus counts every request once, a run goes
through the real judge with the step semantics, the peers run, and the table prints."""

from __future__ import annotations

import numpy as np
import pytest

from rollout.core.readings import difference
from tests.bench.judge_bench import Policy, Scenario, main, run, run_batch, wilson
from tests.bench.peers import Flagger, Kayenta, Ours, mann_whitney_greater, p99_ms
from tests.bench.traffic import CANARY, REQUESTS, STABLE, Traffic, World


def test_readings_of_the_simulated_prometheus_count_every_request_once() -> None:
    rng = np.random.default_rng(3)
    traffic = Traffic(World(200.0, dispersion=0.3), runs=3, scrape_s=15.0, rng=rng)
    weights = np.array([10, 50, 100])
    traffic.advance(0.0, weights)
    first = previous = traffic.reading(1, {})
    judged = 0.0
    for tick in range(1, 40):
        traffic.advance(tick * 17.0, weights)  # ticks not aligned with scrapes, some without a new scrape
        current = traffic.reading(1, {})
        interval = difference(previous, current)
        if interval is not None:
            judged += interval.canary.requests + interval.stable.requests
        previous = current
    truth = traffic.samples[1, :, (CANARY, STABLE), REQUESTS].sum() - sum(
        c.requests for arm in (first.canary, first.stable) if arm for c in arm.values()
    )
    assert judged == truth > 0


def test_one_run_through_the_real_judge() -> None:
    policy = Policy()
    healthy = run(policy, Scenario("healthy", World(2000.0), True), seed=1)
    assert healthy.outcome == "promoted"
    assert healthy.seconds >= len(policy.weights) * policy.step_s  # no step ends before its minimum
    bad = run(policy, Scenario("errors 5x", World(200.0, canary_error_ratio=5.0), False), seed=2)
    assert bad.outcome == "rolled back"
    assert bad.detect_seconds is not None
    assert bad.detect_seconds < policy.step_s


def test_a_fault_only_at_half_weight_is_timed_from_its_onset() -> None:
    world = World(200.0, canary_error_ratio=4.0, fault_from_weight=50)
    results = run_batch(Policy(), Scenario("late", world, False), seed=4, runs=4, judge=Ours(Policy().analysis))
    for result in results:
        assert result.outcome == "rolled back"
        assert result.detect_seconds is not None
        assert result.seconds - result.detect_seconds >= 2 * Policy().step_s  # weights 10 and 25 came first


def test_peers_run_and_the_table_prints(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = Scenario("errors 5x", World(200.0, canary_error_ratio=5.0), False)
    for judge in (Flagger(), Kayenta()):
        assert all(r.outcome == "rolled back" for r in run_batch(Policy(), scenario, 5, 3, judge))
    main(healthy_runs=2, fault_runs=2, only=2)
    out = capsys.readouterr().out
    assert "| req/s | scenario | runs | rollout | Flagger-style" in out
    assert out.count("\n| ") == 1 + 2  # the header and two rows


def test_peer_arithmetic() -> None:
    assert p99_ms(1000, 5, 0) == 250.0
    assert p99_ms(1000, 20, 0) == pytest.approx(250 + 250 * (0.99 - 0.98) / 0.02)
    assert p99_ms(1000, 20, 20) == float("inf")
    assert mann_whitney_greater(np.array([5.0, 6.0, 7.0, 8.0]), np.array([1.0, 2.0, 3.0, 4.0])) < 0.02
    assert mann_whitney_greater(np.array([1.0, 2.0]), np.array([1.0, 2.0])) > 0.5
    low, high = wilson(0, 2000)
    assert low == 0.0
    assert 0.0018 < high < 0.002
