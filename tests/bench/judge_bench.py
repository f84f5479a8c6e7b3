"""Judge comparison benchmark: the sequential judge against Flagger- and Kayenta-style judges.

Owns the Monte Carlo simulation (fixed seeds, numpy) of 30-minute canary steps checked every
30 s, a vectorised replica of ``judge_sequential``'s rollback decision (``tests/bench/
test_judge_bench.py`` asserts it agrees with the real function), and the one markdown table
``main()`` prints. It must not import anything from the daemon but the judge and the policy model.

Per interval: total requests ~ Poisson(rps * 30 s), canary requests ~ Binomial(total, share),
errors and slow requests ~ Binomial(requests, rate). Stable error rate 0.5%, slow share 0.4%
(log-normal latency, median 120 ms, 300 ms bound = p99.6); the latency scenario shifts the
canary's latency by +20% (slow share 0.4% -> 1.7%).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rollout.core.judging.sequential import (
    alphas,
    fail_mixture,
    ratio_grid,
    slo_specs,
)
from scipy import stats  # type: ignore[import-untyped]

from rollout.policy.models import Analysis

INTERVAL_S = 30.0
STEP_INTERVALS = 60  # 30 minutes
STABLE_ERROR = 0.005
SLOW_MEDIAN_MS, SLOW_BOUND_MS = 120.0, 300.0
LATENCY_SIGMA = math.log(SLOW_BOUND_MS / SLOW_MEDIAN_MS) / float(stats.norm.isf(0.004))
LATENCY_SHIFT = 1.2
TRAFFIC = (2.0, 20.0, 200.0)
SHARES = (0.05, 0.10, 0.25)
RATIOS = (1.0, 1.2, 1.5, 2.0, 5.0)
RUNS = 2000
FLAGGER_LIMIT = 0.01
KAYENTA_ALPHA = 0.01  # one-sided; Kayenta's 98% two-sided Mann-Whitney, "higher" direction
KAYENTA_MIN_POINTS = 3

POLICY = Analysis.model_validate(
    {
        "judge": "sequential",
        "slos": {"errorRate": {"max": "1%"}, "latency": {"percentile": 99, "max": "300ms"}},
    }
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def slow_share(latency_factor: float) -> float:
    """Share of requests slower than the bound when every latency is multiplied by the factor."""
    z = math.log(SLOW_BOUND_MS / (SLOW_MEDIAN_MS * latency_factor)) / LATENCY_SIGMA
    return float(stats.norm.sf(z))


@dataclass(frozen=True)
class Scenario:
    rps: float
    share: float
    error_ratio: float
    latency_factor: float

    @property
    def label(self) -> str:
        if self.latency_factor != 1.0:
            return f"latency x{self.latency_factor:g}"
        return f"errors x{self.error_ratio:g}"

    @property
    def healthy(self) -> bool:
        return self.error_ratio == 1.0 and self.latency_factor == 1.0


@dataclass(frozen=True)
class Counts:
    """Per-run, per-interval counts, shape (runs, intervals)."""

    canary_requests: IntArray
    canary_errors: IntArray
    canary_slow: IntArray
    stable_requests: IntArray
    stable_errors: IntArray
    stable_slow: IntArray


def simulate(scenario: Scenario, runs: int, intervals: int, seed: int) -> Counts:
    rng = np.random.default_rng(seed)
    shape = (runs, intervals)
    total = rng.poisson(scenario.rps * INTERVAL_S, size=shape)
    canary = rng.binomial(total, scenario.share)
    stable = total - canary
    base_slow = slow_share(1.0)
    return Counts(
        canary_requests=canary,
        canary_errors=rng.binomial(canary, min(STABLE_ERROR * scenario.error_ratio, 1.0)),
        canary_slow=rng.binomial(canary, slow_share(scenario.latency_factor)),
        stable_requests=stable,
        stable_errors=rng.binomial(stable, STABLE_ERROR),
        stable_slow=rng.binomial(stable, base_slow),
    )


def _first_true(flags: NDArray[np.bool_]) -> IntArray:
    """Index (1-based interval count) of the first True per row; 0 when never."""
    hit = flags.any(axis=1)
    first = flags.argmax(axis=1) + 1
    return np.where(hit, first, 0).astype(np.int64)


def sequential_rollback(counts: Counts, analysis: Analysis, canary_share: float) -> IntArray:
    """Vectorised replica of ``judge_sequential``'s fail decision: the first failing interval.

    Same grid, mixture, thresholds and interval routing (relative when stable had traffic and the
    share is below 1, else absolute in ``auto``/``absolute`` modes); pass/hold are not needed to
    know when a run rolls back because a failure is sticky and fails regardless of passing.
    """
    options = analysis.sequential
    specs = slo_specs(analysis)
    budget = alphas(options, len(specs))
    grid = np.array(ratio_grid(options))
    mixture = fail_mixture(options)
    alts = np.array([ratio_grid(options).index(a) for a, _ in mixture])
    log_w = np.log(np.array([w for _, w in mixture]))
    tol = ratio_grid(options).index(options.tolerance)
    c_n = counts.canary_requests.astype(np.float64)
    s_n = counts.stable_requests.astype(np.float64)
    usable = c_n > 0
    relative = usable & (s_n > 0) & (canary_share < 1.0) & (options.mode != "absolute")
    absolute = usable & ~relative & (options.mode != "relative")
    share = np.where(usable, c_n / np.maximum(c_n + s_n, 1.0), 0.0)
    failed = np.zeros(c_n.shape, dtype=bool)
    for spec in specs:
        x, y = (
            (counts.canary_errors, counts.stable_errors)
            if spec.name == "errorRate"
            else (counts.canary_slow, counts.stable_slow)
        )
        xf = np.where(relative, x, 0).astype(np.float64)
        kf = np.where(relative, x + y, 0).astype(np.float64)
        inc = xf[..., None] * np.log(grid) - kf[..., None] * np.log1p(share[..., None] * (grid - 1.0))
        loglik = np.cumsum(inc, axis=1)
        diffs = loglik[..., alts] - loglik[..., tol : tol + 1] + log_w
        top = diffs.max(axis=-1, keepdims=True)
        rel_ev = top[..., 0] + np.log(np.exp(diffs - top).sum(axis=-1))
        fail = rel_ev >= (math.log(1 / budget.relative) if budget.relative > 0 else np.inf)
        if budget.absolute > 0:
            p0 = min(max(spec.limit, 1e-9), 0.5)
            p1 = min(options.regression * p0, 0.999)
            a_inc = x * math.log(p1 / p0) + (c_n - x) * math.log((1 - p1) / (1 - p0))
            abs_ev = np.cumsum(np.where(absolute, a_inc, 0.0), axis=1)
            fail |= abs_ev >= math.log(1 / budget.absolute)
        failed |= fail
    return _first_true(failed)


def flagger_rollback(counts: Counts, failure_limit: int) -> IntArray:
    """Flagger-style: a check fails when the canary's error rate or slow share exceeds 1%, or when
    the canary served nothing (no values found); roll back at ``failure_limit`` failed checks."""
    n = counts.canary_requests
    safe = np.maximum(n, 1)
    bad = (n == 0) | (counts.canary_errors / safe > FLAGGER_LIMIT) | (counts.canary_slow / safe > FLAGGER_LIMIT)
    return _first_true(np.cumsum(bad, axis=1) >= failure_limit)


def _mwu_greater_p(canary: FloatArray, stable: FloatArray) -> FloatArray:
    """One-sided Mann-Whitney p-value (canary > stable) per row: normal approximation with tie
    and continuity corrections, as scipy's asymptotic method."""
    n = canary.shape[1]
    both = np.concatenate([canary, stable], axis=1)
    low = stats.rankdata(both, method="min", axis=1)
    high = stats.rankdata(both, method="max", axis=1)
    ranks = (low + high) / 2.0
    u = ranks[:, :n].sum(axis=1) - n * (n + 1) / 2.0
    ties = ((high - low + 1.0) ** 2 - 1.0).sum(axis=1)
    total = 2 * n
    var = n * n / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    z = (u - n * n / 2.0 - 0.5) / np.sqrt(np.maximum(var, 1e-300))
    return np.where(var > 0, stats.norm.sf(z), 1.0)


def kayenta_rollback(counts: Counts) -> IntArray:
    """Kayenta-style: at every check, Mann-Whitney of the canary's per-interval error rates (and
    slow shares) against stable's since the step began; roll back when either is significantly
    higher. Intervals where the canary served nothing count as rate 0 (Kayenta drops them)."""
    runs, intervals = counts.canary_requests.shape
    c_n = np.maximum(counts.canary_requests, 1)
    s_n = np.maximum(counts.stable_requests, 1)
    series = [
        (counts.canary_errors / c_n, counts.stable_errors / s_n),
        (counts.canary_slow / c_n, counts.stable_slow / s_n),
    ]
    failed = np.zeros((runs, intervals), dtype=bool)
    for t in range(KAYENTA_MIN_POINTS, intervals + 1):
        for canary, stable in series:
            failed[:, t - 1] |= _mwu_greater_p(canary[:, :t], stable[:, :t]) < KAYENTA_ALPHA
    return _first_true(failed)


def scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    for rps in TRAFFIC:
        for share in SHARES:
            out.extend(Scenario(rps, share, ratio, 1.0) for ratio in RATIOS)
            out.append(Scenario(rps, share, 1.0, LATENCY_SHIFT))
    return out


def cell(first: IntArray, healthy: bool) -> str:
    rate = float((first > 0).mean())
    if healthy:
        return f"{100 * rate:.2f}%"
    if rate == 0:
        return "0%"
    minutes = float(np.median(first[first > 0])) * INTERVAL_S / 60.0
    return f"{100 * rate:.1f}% · {minutes:.1f}m"


JUDGES = ("sequential", "flagger fl=1", "flagger fl=5", "kayenta mwu")


def run_scenario(scenario: Scenario, seed: int, runs: int = RUNS) -> dict[str, IntArray]:
    counts = simulate(scenario, runs, STEP_INTERVALS, seed)
    return {
        "sequential": sequential_rollback(counts, POLICY, scenario.share),
        "flagger fl=1": flagger_rollback(counts, 1),
        "flagger fl=5": flagger_rollback(counts, 5),
        "kayenta mwu": kayenta_rollback(counts),
    }


def main(runs: int = RUNS) -> None:
    lines = [
        f"Rollback rate per 30-min step ({runs} runs/scenario, checks every 30 s). Healthy rows "
        "(x1): false rollbacks. Others: detection rate · median time to detect.",
        "",
        "| req/s | canary | scenario | " + " | ".join(JUDGES) + " |",
        "|---:|---:|---|" + "---:|" * len(JUDGES),
    ]
    for seed, scenario in enumerate(scenarios()):
        result = run_scenario(scenario, seed, runs)
        row = [f"{scenario.rps:g}", f"{100 * scenario.share:g}%", scenario.label]
        row += [cell(result[j], scenario.healthy) for j in JUDGES]
        lines.append("| " + " | ".join(row) + " |")
        print(f"{scenario} done", file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
