"""Tests of the sequential judge: hand-computed evidence, every rule of the step semantics (fail
evidence carries and restarts per weight, pass evidence per step at weight, minRequests at this
step, the 100% rule, noData, custom metrics, latency buckets), words people read, and the model
(beta-binomial) against scipy."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy import stats  # type: ignore[import-untyped]

from rollout.core.judging.evidence import SUSTAIN_S
from rollout.core.judging.likelihoods import beta_binomial, fail_alternatives, relative_loglik
from rollout.core.readings import Outcome
from rollout.core.verdicts import VerdictKind
from tests.core.judge_inputs import ERRORS_ONLY, Driver, analysis, check

NO_SPREAD: dict[str, Any] = {"dispersion": 0}
PASS, FAIL, HOLD = VerdictKind.PASS, VerdictKind.FAIL, VerdictKind.HOLD


# --- the model ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("x", "k", "mean", "rho"), [(3, 20, 0.1, 0.05), (0, 7, 0.3, 0.2), (40, 40, 0.9, 0.01)])
def test_beta_binomial_is_scipys_without_the_binomial_coefficient(x: int, k: int, mean: float, rho: float) -> None:
    nu = 1 / rho - 1
    expected = stats.betabinom.logpmf(x, k, mean * nu, (1 - mean) * nu) - math.log(math.comb(k, x))
    assert beta_binomial(x, k, mean, rho) == pytest.approx(expected, abs=1e-9)


def test_without_dispersion_the_relative_model_is_the_conditional_binomial() -> None:
    # 20 ln 2 - 65 ln 1.1: the canary's 20 of 65 events at share 0.1, ratio 2 against 1
    increment = relative_loglik(20, 65, 0.1, 2.0, 0.0) - relative_loglik(20, 65, 0.1, 1.0, 0.0)
    assert increment == pytest.approx(20 * math.log(2) - 65 * math.log(1.1), abs=1e-9)


def test_dispersion_weakens_the_evidence_of_one_big_interval() -> None:
    def evidence(tau: float) -> float:
        return relative_loglik(300, 1500, 0.1, 2.0, tau) - relative_loglik(300, 1500, 0.1, 1.0, tau)

    assert evidence(0.2) < evidence(0.0) / 3


# --- fail ---------------------------------------------------------------------------------------


def test_clear_regression_rolls_back_with_hand_computed_evidence() -> None:
    run = Driver(analysis(sequential=NO_SPREAD), weight_steps=1)
    verdict = run.tick((1000, 20, 5, 5), (9000, 45, 45, 45))
    err = check(verdict)
    assert verdict.kind is FAIL
    assert verdict.rollback
    assert verdict.summary.startswith("roll back: the canary is worse on errorRate")
    assert err.threshold == pytest.approx(math.log(200))  # alpha 0.01 over 2 SLOs
    weight_of_2 = dict(fail_alternatives(analysis().sequential))[2.0]
    assert err.evidence is not None
    assert err.evidence >= 20 * math.log(2) - 65 * math.log(1.1) + math.log(weight_of_2) - 1e-9
    assert (err.test, err.canary_rate, err.stable_rate) == ("relative", 0.02, 0.005)
    assert err.ratio == pytest.approx(4.0)
    assert err.slo == 0.01
    assert check(verdict, "latency").verdict is not FAIL


def test_fail_evidence_carries_across_steps() -> None:
    """Evidence gathered before a step change still counts after it."""
    bad = ((2000, 16), (18000, 90))  # 0.8% vs 0.5%
    policy = analysis(ERRORS_ONLY, sequential=NO_SPREAD)
    fresh = Driver(policy, weight_steps=2)
    needed = next(i for i in range(1, 100) if fresh.tick(*bad).rollback)
    assert needed >= 4
    carried = Driver(policy, weight_steps=2)
    for _ in range(needed // 2):
        assert not carried.tick(*bad).rollback
    carried.move(10)  # the next step, at the same weight: the run's e-processes continue
    after_move = next(i for i in range(1, 100) if carried.tick(*bad).rollback)
    assert after_move <= needed - needed // 2 + 1 < needed


def test_a_fault_that_appears_at_a_higher_weight_is_not_diluted_by_good_steps() -> None:
    """Hours of a good canary at 10%, then 3x at 50%: the restart at 50% catches it about as fast
    as a run that started at 50%."""
    policy = analysis(ERRORS_ONLY, sequential=NO_SPREAD)
    run = Driver(policy, weight_steps=3)
    for _ in range(200):
        run.tick((2000, 10), (18000, 90))
    run.move(50)
    bad = ((5000, 75), (5000, 25))
    after_good = next(i for i in range(1, 60) if run.tick(*bad).rollback)
    fresh = Driver(policy, weight_steps=3)
    from_scratch = next(i for i in range(1, 60) if fresh.tick(*bad).rollback)
    assert after_good <= from_scratch + 1


def test_intervals_spanning_a_weight_change_count_as_fail_evidence() -> None:
    run = Driver(analysis(ERRORS_ONLY, sequential=NO_SPREAD), weight_steps=1)
    verdict = run.tick((1000, 20), (9000, 45), at_weight=False)
    assert verdict.rollback
    assert verdict.canary is not None
    assert verdict.canary.requests == 0  # but not as this step's data


def test_a_failure_is_sticky() -> None:
    run = Driver(analysis(ERRORS_ONLY, sequential=NO_SPREAD), weight_steps=1)
    assert run.tick((1000, 20), (9000, 45)).rollback
    assert run.tick((100000, 500), (100000, 500)).rollback


def test_a_canary_without_errors_never_fails() -> None:
    run = Driver(analysis(ERRORS_ONLY), weight_steps=1)
    for _ in range(50):
        assert run.tick((1000, 0), (9000, 900)).kind is not FAIL


# --- pass ---------------------------------------------------------------------------------------


def test_healthy_canary_with_plenty_of_data_passes() -> None:
    run = Driver(analysis(), weight=50)
    for _ in range(5):
        verdict = run.tick((4000, 20, 16, 2), (4000, 20, 16, 2))
    assert verdict.kind is PASS
    assert verdict.enough_data
    assert verdict.summary.startswith("pass:")
    for c in verdict.checks:
        assert c.verdict is PASS
        assert c.threshold == pytest.approx(math.log(20))
        assert c.evidence is not None
        assert c.threshold is not None
        assert c.evidence >= c.threshold
        assert "always-valid" in c.detail


def test_one_huge_interval_is_worth_a_bounded_amount_of_evidence() -> None:
    """Under the dispersion model an interval's rates vary as a whole: one interval, however big,
    cannot pass a step; without dispersion it can."""
    big = ((20000, 100, 80, 10), (20000, 100, 80, 10))
    assert Driver(analysis(), weight=50).tick(*big).kind is HOLD
    assert Driver(analysis(sequential=NO_SPREAD), weight=50).tick(*big).kind is PASS


def test_a_canary_twice_as_bad_as_stable_under_the_floor_never_passes_on_the_relative_test() -> None:
    """0.6% vs 0.3% with SLO 1% (floor 0.5%): neither 'below 2x stable' nor 'below the floor' holds."""
    run = Driver(analysis(ERRORS_ONLY, sequential={"alpha": 1e-9}), weight=50)
    for _ in range(40):
        verdict = run.tick((5000, 30), (5000, 15))
        assert verdict.kind is not PASS


def test_no_errors_anywhere_passes_through_the_floor() -> None:
    """Relative evidence needs events; a canary shown below SLO/regression passes without them."""
    run = Driver(analysis(ERRORS_ONLY), weight=10)
    kinds = [run.tick((300, 0), (2700, 0)).kind for _ in range(10)]
    assert kinds[0] is HOLD
    assert kinds[-1] is PASS


def test_pass_needs_min_requests_at_this_weight() -> None:
    run = Driver(analysis(ERRORS_ONLY, min_requests=5000), weight=50)
    verdict = run.tick((4000, 0), (4000, 0), at_weight=False)  # spans the weight change
    assert verdict.kind is HOLD
    verdict = run.tick((4000, 0), (4000, 0))
    assert verdict.kind is HOLD
    assert not verdict.enough_data
    assert "4,000 of 5000 canary requests judged at 50%" in verdict.summary
    verdict = run.tick((4000, 0), (4000, 0))
    assert verdict.kind is PASS
    assert verdict.enough_data


def test_pass_evidence_does_not_carry_into_the_next_step() -> None:
    run = Driver(analysis(ERRORS_ONLY), weight=10)
    for _ in range(5):
        verdict = run.tick((4000, 20), (36000, 180))
    assert verdict.kind is PASS
    run.move(50)
    verdict = run.tick(None)
    assert verdict.kind is HOLD
    assert verdict.canary is not None
    assert verdict.canary.requests == 0
    err = check(verdict)
    assert err.evidence is not None
    assert err.threshold is not None
    assert err.evidence < err.threshold


# --- the 100% step ------------------------------------------------------------------------------


def test_at_full_weight_a_canary_as_good_as_a_stable_above_the_slo_is_not_rolled_back() -> None:
    run = Driver(analysis(ERRORS_ONLY), weight_steps=2, weight=50)
    for _ in range(20):
        run.tick((5000, 75), (5000, 75))  # both at 1.5%, SLO 1%
    run.move(100)
    for _ in range(200):
        verdict = run.tick((10000, 150))
        assert not verdict.rollback
    assert verdict.kind is PASS
    err = check(verdict)
    assert err.test == "absolute"
    assert "= 1.5%" in err.detail  # held to max(SLO, stable's earlier rate)


def test_at_full_weight_a_short_burst_cannot_fail_but_a_sustained_rise_does() -> None:
    run = Driver(analysis(ERRORS_ONLY), weight_steps=1, weight=100)
    burst = int(SUSTAIN_S // 30) - 1
    for _ in range(burst):
        assert not run.tick((10000, 400)).rollback  # 4% vs SLO 1%, for less than SUSTAIN_S
    assert run.tick((10000, 400)).rollback  # SUSTAIN_S of a raised rate


def test_at_full_weight_the_canary_passes_below_regression_times_the_slo() -> None:
    run = Driver(analysis(ERRORS_ONLY), weight=100)
    verdict = run.tick((3000, 3))
    for _ in range(5):
        verdict = run.tick((3000, 3))
    assert verdict.kind is PASS


@pytest.mark.parametrize(("mode", "expected"), [("relative", HOLD), ("absolute", PASS), ("auto", PASS)])
def test_modes_at_full_weight(mode: str, expected: VerdictKind) -> None:
    run = Driver(analysis(ERRORS_ONLY, sequential={"mode": mode}), weight=100)
    for _ in range(10):
        verdict = run.tick((3000, 3))
    assert verdict.kind is expected


# --- data that is not there --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_data", "kind", "rollback_on_second"),
    [("hold", HOLD, False), ("pass", PASS, False), ("fail", FAIL, True)],
)
def test_no_data(no_data: str, kind: VerdictKind, rollback_on_second: bool) -> None:
    run = Driver(analysis(no_data=no_data, failure_limit=2))
    first = run.tick(None, outcome=Outcome.NO_DATA, reason="no series for v2")
    assert first.kind is kind
    assert not first.enough_data
    assert not first.rollback
    assert first.summary.startswith(kind.value)
    assert "no series for v2" in first.summary
    assert run.tick((0, 0), (900, 4)).rollback is rollback_on_second  # the canary served nothing


def test_no_new_scrape_is_a_quiet_hold_even_with_no_data_fail() -> None:
    run = Driver(analysis(no_data="fail", failure_limit=1))
    for _ in range(5):
        verdict = run.tick(None, reason="no new scrape")
        assert verdict.kind is HOLD
        assert not verdict.rollback
        assert verdict.summary.startswith("hold: no new scrape")
    assert run.memory.failures == 0


@pytest.mark.parametrize("outcome", [Outcome.UNAVAILABLE, Outcome.QUERY_ERROR])
def test_unavailable_metrics_hold(outcome: Outcome) -> None:
    verdict = Driver(analysis(no_data="fail")).tick(None, outcome=outcome, reason="connection refused")
    assert verdict.kind is HOLD
    assert "connection refused" in verdict.summary


def test_zero_weight_is_a_quiet_hold() -> None:
    verdict = Driver(analysis(no_data="fail"), weight=0).tick((0, 0), (1000, 5))
    assert verdict.kind is HOLD
    assert "0%" in verdict.summary


# --- custom metrics -------------------------------------------------------------------------------

SATURATION: dict[str, Any] = {"name": "saturation", "query": "sat{{b='{backend}'}}", "max": 0.8}


def test_a_custom_metric_breach_is_never_promoted_and_rolls_back_at_the_failure_limit() -> None:
    run = Driver(analysis(metrics=[SATURATION], failure_limit=2), weight=50)
    first = run.tick((20000, 100), (20000, 100), custom={"saturation": 0.95})
    assert (first.kind, first.rollback) == (FAIL, False)
    assert first.summary.startswith("fail: saturation 0.95 above max 0.8 (1 of 2 failures)")
    gauge = check(first, "saturation")
    assert (gauge.verdict, gauge.value, gauge.limit, gauge.test) == (FAIL, 0.95, 0.8, "gauge")
    assert run.tick(None, custom={"saturation": 0.95}).kind is HOLD  # no new data: not counted again
    second = run.tick((20000, 100), (20000, 100), custom={"saturation": 0.95})
    assert second.rollback
    assert second.summary.startswith("roll back: saturation")


def test_a_missing_custom_metric_holds() -> None:
    run = Driver(analysis(metrics=[SATURATION]), weight=50)
    verdict = run.tick((20000, 100), (20000, 100), outcome=Outcome.PARTIAL)
    assert verdict.kind is HOLD
    assert check(verdict, "saturation").verdict is HOLD
    assert run.tick((20000, 100), (20000, 100), custom={"saturation": 0.5}).kind is PASS


def test_no_slos_passes_on_requests_and_custom_metrics_alone() -> None:
    run = Driver(analysis({}, metrics=[SATURATION]), weight=50)
    verdict = run.tick((200, 0), (200, 0), custom={"saturation": 0.5})
    assert verdict.kind is PASS
    assert [c.name for c in verdict.checks] == ["saturation"]


# --- latency buckets ----------------------------------------------------------------------------


def test_latency_compares_the_bucket_below_and_fails_absolutely_on_the_bucket_above() -> None:
    policy = analysis({"latency": {"percentile": 99, "max": "300ms"}}, sequential=NO_SPREAD)
    relative = Driver(policy, weight_steps=1).tick((1000, 0, 60, 0), (9000, 0, 180, 0))
    assert relative.rollback  # 6% vs 2% slower than 250ms
    lat = check(relative, "latency")
    assert "slower than 250ms for the relative and pass tests" in lat.detail
    assert "slower than 500ms for the absolute fail test" in lat.detail
    full = Driver(policy, weight_steps=1, weight=100)
    for _ in range(20):
        verdict = full.tick((10000, 0, 500, 20))  # 5% above 250ms but only 0.2% above 500ms
        assert not verdict.rollback


# --- words --------------------------------------------------------------------------------------


def test_rates_are_fractions_and_the_summary_starts_with_the_decision() -> None:
    verdict = Driver(analysis(ERRORS_ONLY), weight=25).tick((400, 2), (1200, 6))
    err = check(verdict)
    assert verdict.summary.startswith("hold: not enough evidence yet on errorRate")
    assert (err.canary_rate, err.stable_rate, err.slo) == (0.005, 0.005, 0.01)
    assert "canary 2/400 (0.5%) vs stable 6/1,200 (0.5%) at 25%" in err.detail
    assert "%%" not in verdict.summary
    for value in (err.value, err.limit, err.evidence, err.threshold, err.ratio, err.ratio_low):
        assert value is None or math.isfinite(value)
