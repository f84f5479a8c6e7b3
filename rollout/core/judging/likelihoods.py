"""The probability model of the sequential judge: grids of hypotheses, mixture weights and the
beta-binomial log-likelihoods of one interval's counts.

Owns the arithmetic only (no memory, no verdicts). The model, per interval and per SLO:

* **relative** (both backends served requests): given ``k`` events (errors, or slow requests) in
  the interval, the canary's ``x`` of them are beta-binomial with mean ``pi_r = s*r / (s*r + 1 - s)``
  (``s`` the canary's share of the interval's requests, ``r`` the canary/stable rate ratio) and
  intra-interval correlation ``rho = 2 * dispersion^2 * pi_r * (1 - pi_r)``. That is what each
  backend's rate varying from interval to interval by an independent factor with log-standard
  deviation ``dispersion`` does to the conditional binomial (to first order); ``dispersion = 0``
  is the plain conditional binomial of Poisson counts.
* **absolute** (the canary alone, e.g. stable has no traffic): the canary's ``x`` events among its
  ``n`` requests are beta-binomial with mean ``p`` and ``rho = 2 * dispersion^2 * p / (1 - p)``
  (the canary's own rate varying by a factor with log-standard deviation ``sqrt(2) * dispersion``).

Log-likelihoods leave out the binomial coefficient (it cancels in every ratio). Pure math: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache

from rollout.policy.analysis import SequentialOptions

GRID_EXPONENTS = range(-4, 7)  # ratios 2^(j/2): 1/4 .. 8
ABSOLUTE_MULTIPLES: tuple[tuple[float, float], ...] = ((0.125, 0.25), (0.25, 0.25), (0.5, 0.25), (0.75, 0.25))
"""(multiple of the null level, weight): the alternatives of the absolute pass test."""
RHO_MAX = 0.5
_P_MIN, _P_MAX = 1e-9, 1.0 - 1e-9


def ratio_grid(options: SequentialOptions) -> tuple[float, ...]:
    """The canary/stable ratios whose likelihood the judge keeps (with tolerance and regression)."""
    return _grid(options.tolerance, options.regression)


@cache
def _grid(tolerance: float, regression: float) -> tuple[float, ...]:
    return tuple(sorted({2.0 ** (j / 2) for j in GRID_EXPONENTS} | {tolerance, regression}))


def _half_on(point: float, ratios: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """Mixture weights: half the mass on ``point``, half spread evenly over ``ratios``."""
    return tuple((r, 0.5 / len(ratios) + (0.5 if r == point else 0.0)) for r in ratios)


def fail_alternatives(options: SequentialOptions) -> tuple[tuple[float, float], ...]:
    """(ratio, weight) of the fail test's alternatives: every grid ratio above ``tolerance``, half
    the mass on ``regression`` (the ratio the policy says must be caught)."""
    return _fails(options.tolerance, options.regression)


@cache
def _fails(tolerance: float, regression: float) -> tuple[tuple[float, float], ...]:
    return _half_on(regression, tuple(r for r in _grid(tolerance, regression) if r > tolerance))


def pass_alternatives(options: SequentialOptions) -> tuple[tuple[float, float], ...]:
    """(ratio, weight) of the relative pass test's alternatives: every grid ratio below
    ``regression``, half the mass on ``tolerance`` (a canary as good as stable)."""
    return _passes(options.tolerance, options.regression)


@cache
def _passes(tolerance: float, regression: float) -> tuple[tuple[float, float], ...]:
    return _half_on(tolerance, tuple(r for r in _grid(tolerance, regression) if r < regression))


def canary_share_of_events(share: float, ratio: float) -> float:
    """The expected canary share of an interval's events when the canary's rate is ``ratio`` times
    stable's and it served ``share`` of the requests."""
    return share * ratio / (share * ratio + 1.0 - share)


def beta_binomial(x: float, k: float, mean: float, rho: float) -> float:
    """Log-likelihood (without the binomial coefficient) of ``x`` successes in ``k`` trials whose
    success probability is Beta-distributed with ``mean`` and intra-class correlation ``rho``
    (``rho = 0``: binomial). Counts may be fractional."""
    mean = min(max(mean, _P_MIN), _P_MAX)
    if rho < 1e-12:
        return x * math.log(mean) + (k - x) * math.log1p(-mean)
    nu = 1.0 / min(rho, RHO_MAX) - 1.0
    a, b = mean * nu, (1.0 - mean) * nu
    lg = math.lgamma
    return lg(x + a) - lg(a) + lg(k - x + b) - lg(b) - lg(k + nu) + lg(nu)


def relative_loglik(x: float, k: float, share: float, ratio: float, dispersion: float) -> float:
    """Log-likelihood of ratio ``ratio`` given ``x`` canary events among ``k`` (relative model)."""
    pi = canary_share_of_events(share, ratio)
    return beta_binomial(x, k, pi, 2.0 * dispersion * dispersion * pi * (1.0 - pi))


def absolute_loglik(x: float, n: float, rate: float, dispersion: float) -> float:
    """Log-likelihood of the canary's rate being ``rate`` given ``x`` events among ``n`` requests."""
    p = min(max(rate, _P_MIN), _P_MAX)
    return beta_binomial(x, n, p, 2.0 * dispersion * dispersion * p / (1.0 - p))


def log_sum_exp(values: Iterable[float], weights: Iterable[float]) -> float:
    """``log(sum(w * exp(v)))``, computed stably."""
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if w > 0]
    top = max(v for v, _ in pairs)
    return top + math.log(sum(w * math.exp(v - top) for v, w in pairs))


def log_add(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))``."""
    top = max(a, b)
    return top + math.log(math.exp(a - top) + math.exp(b - top))
