"""Properties of the judges (hypothesis) and Monte Carlo checks of the sequential judge's bounds.

- each interval is absorbed once: without dispersion, splitting a window into intervals (the same
  traffic split between the arms in each) gives the same evidence and verdict as one interval, while
  stable has traffic (at 100% each interval's absolute fail evidence is capped by its duration on
  purpose, see ``evidence.SUSTAIN_S``); when the parts cross the fail threshold on the way they
  roll back, and whatever rolls back as one interval rolls back in parts;
- a rollback always has its evidence (a test over its threshold, or failureLimit failures);
- missing data never passes with enough data;
- (slow) false rollbacks of a canary as good as stable stay under alpha, with per-arm dispersion
  within the model, across weight steps; a canary at the pass boundary passes a step with
  probability under beta.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.core.readings import Outcome
from rollout.core.verdicts import Verdict, VerdictKind
from tests.core.judge_inputs import Driver, analysis

SPLITS = st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=1, max_size=5)


def _split(total: int, fractions: list[float], rng: np.random.Generator) -> list[int]:
    """``total`` events spread at random over len(fractions) parts."""
    weights = np.array(fractions) / sum(fractions)
    return [int(v) for v in rng.multinomial(total, weights)]


@settings(max_examples=60, deadline=None)
@given(
    window=st.tuples(st.integers(50, 20000), st.integers(50, 20000), st.integers(0, 50), st.integers(0, 50)),
    fractions=SPLITS,
    seed=st.integers(0, 2**32 - 1),
    weight=st.sampled_from([10, 50]),
)
def test_splitting_a_window_into_intervals_changes_nothing_without_dispersion(
    window: tuple[int, int, int, int], fractions: list[float], seed: int, weight: int
) -> None:
    c_n, s_n, c_x, s_x = window
    policy = analysis({"errorRate": {"max": "1%"}}, sequential={"dispersion": 0}, min_requests=10)
    rng = np.random.default_rng(seed)
    stable_n, stable_x, c_x = s_n, min(s_x, s_n), min(c_x, c_n)
    whole = Driver(policy, weight=weight)
    one = whole.tick((c_n, c_x), (stable_n, stable_x), seconds=30.0 * len(fractions))
    parts = Driver(policy, weight=weight)
    share = [f / sum(fractions) for f in fractions]
    for fraction, cx, sx in zip(share, _split(c_x, fractions, rng), _split(stable_x, fractions, rng), strict=True):
        last = parts.tick((c_n * fraction, cx), (stable_n * fraction, sx))
    if one.rollback or any(v.rollback for v in parts.verdicts):
        # the parts may cross the fail threshold on the way (a sequential test looks at every
        # interval), never less: what rolls back as one interval rolls back in parts
        assert last.rollback or not one.rollback
        return
    assert last.kind is one.kind
    mine, theirs = parts.memory.slos[0], whole.memory.slos[0]
    for a, b in zip(mine.fail + mine.step + mine.absolute, theirs.fail + theirs.step + theirs.absolute, strict=True):
        assert a == pytest.approx(b, abs=1e-6 * max(1.0, abs(b)))


TICKS = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 3000), st.integers(0, 100), st.integers(0, 3000), st.integers(0, 100)),
        st.sampled_from(["none", "no-data", "unavailable"]),
    ),
    min_size=1,
    max_size=25,
)


def _feed(run: Driver, tick: Any) -> Verdict:
    if tick == "none":
        return run.tick(None)
    if tick == "no-data":
        return run.tick(None, outcome=Outcome.NO_DATA)
    if tick == "unavailable":
        return run.tick(None, outcome=Outcome.UNAVAILABLE)
    c_n, c_x, s_n, s_x = tick
    return run.tick((c_n, min(c_x, c_n)), (s_n, min(s_x, s_n)), custom={"saturation": 0.5})


@settings(max_examples=80, deadline=None)
@given(
    ticks=TICKS, judge=st.sampled_from(["sequential", "threshold"]), no_data=st.sampled_from(["hold", "fail", "pass"])
)
def test_rollback_only_with_evidence_and_missing_data_never_passes_with_enough_data(
    ticks: list[Any], judge: str, no_data: str
) -> None:
    metric = {"name": "saturation", "query": "s", "max": 0.8}
    policy = analysis(judge=judge, no_data=no_data, metrics=[metric], failure_limit=3)
    run = Driver(policy, weight=50)
    for tick in ticks:
        verdict = _feed(run, tick)
        if isinstance(tick, str):
            assert not (verdict.kind is VerdictKind.PASS and verdict.enough_data)
        if verdict.rollback:
            over = [
                c
                for c in verdict.checks
                if c.verdict is VerdictKind.FAIL and (c.evidence or -math.inf) >= (c.threshold or math.inf)
            ]
            assert run.memory.failures >= 3 or over
        if verdict.kind is VerdictKind.PASS and verdict.enough_data:
            assert verdict.canary is not None
            assert verdict.canary.requests >= policy.min_requests


@settings(max_examples=40, deadline=None)
@given(ticks=st.lists(st.sampled_from(["none", "no-data", "unavailable"]), min_size=1, max_size=30))
def test_a_run_without_data_never_passes_with_enough_data(ticks: list[str]) -> None:
    for judge in ("sequential", "threshold"):
        run = Driver(analysis(judge=judge, no_data="pass"), weight=50)
        assert not any(v.kind is VerdictKind.PASS and v.enough_data for v in (_feed(run, t) for t in ticks))


def _healthy_run(rng: np.random.Generator, policy: Any, rps: float, spread: float) -> bool:
    """One run over four weight steps of 10 intervals; True when it rolled back."""
    run = Driver(policy, weight_steps=4)
    for step, weight in enumerate((10, 25, 50, 100)):
        if step:
            run.move(weight)
        for _ in range(10):
            n = rng.poisson(rps * 30)
            c_n = rng.binomial(n, weight / 100)
            c_rate, s_rate = 0.005 * rng.uniform(1 - spread, 1 + spread, 2)
            verdict = run.tick((c_n, rng.binomial(c_n, c_rate)), (n - c_n, rng.binomial(n - c_n, s_rate)))
            if verdict.rollback:
                return True
    return False


@pytest.mark.slow
@pytest.mark.parametrize(("rps", "spread"), [(200.0, 0.0), (2000.0, 0.3)])
def test_false_rollbacks_stay_under_alpha(rps: float, spread: float) -> None:
    policy = analysis({"errorRate": {"max": "1%"}}, sequential={"alpha": 0.05})
    rng = np.random.default_rng(11)
    runs = 400
    rolled = sum(_healthy_run(rng, policy, rps, spread) for _ in range(runs))
    # the Wilson upper bound at 95% of the observed rate must stay under alpha
    p = rolled / runs
    upper = (p + 1.92 / runs + 1.96 * math.sqrt(p * (1 - p) / runs + 0.96 / runs**2)) / (1 + 3.84 / runs)
    assert upper < 0.05, (rolled, runs)


@pytest.mark.slow
def test_a_canary_at_the_pass_boundary_passes_a_step_with_probability_under_beta() -> None:
    """Canary at exactly 2x stable, above the floor (SLO/2): P(the step passes) <= beta."""
    policy = analysis({"errorRate": {"max": "1%"}}, sequential={"alpha": 1e-12, "beta": 0.1})
    rng = np.random.default_rng(5)
    runs, passed = 300, 0
    for _ in range(runs):
        run = Driver(policy, weight=50)
        for _ in range(40):
            c_n, s_n = rng.poisson(3000), rng.poisson(3000)
            verdict = run.tick((c_n, rng.binomial(c_n, 0.012)), (s_n, rng.binomial(s_n, 0.006)))
            if verdict.kind is VerdictKind.PASS:
                passed += 1
                break
    assert passed / runs < 0.1
