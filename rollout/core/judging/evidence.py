"""The sequential judge's evidence about one SLO: absorbing one interval into ``SLOMemory``, and
weighing what has been absorbed (``weigh``). The model is in ``likelihoods.py``; the guarantees:

* **Fail (any time, across steps).** Per interval, each fail alternative ``a`` (ratios above
  ``tolerance``) gets a likelihood ratio against ``tolerance``: from the relative model when both
  backends served requests, else (the 100% step) from the absolute model of the canary alone
  against the level ``B = max(SLO, stable's rate over the run so far)`` (``tolerance*B`` against
  ``a*B``), each absolute interval's ratio capped at ``(1/alpha_slo) ** (seconds / SUSTAIN_S)``
  so that a common-mode burst shorter than ``SUSTAIN_S`` cannot fail the run on its own (a capped
  e-value is still an e-value). The e-detector is the average, with weight ``1/K`` each, of these
  e-processes restarted at the start of each of the ``K`` weight steps (the run start is the first),
  mixed over the alternatives (half the mass on ``regression``); unstarted restarts count as 1.
  It is a nonnegative martingale under the null, so by Ville's inequality the probability that it
  *ever* reaches ``1/alpha_slo`` is at most ``alpha_slo = alpha / number of SLOs``. A fault that
  appears only at a later weight is judged by the restart at that weight, undiluted by earlier
  good steps, at the price of ``log K`` more evidence.
* **Pass (per step, at-weight intervals only).** The e-value is the average of the relative mirror
  test (alternatives below ``regression`` against ``regression``) and an absolute test of the
  canary alone against the level ``SLO/regression`` (the floor; at the 100% step
  ``regression*max(SLO, stable's rate)``). Under the composite null "canary's rate at least
  ``max(regression x stable, SLO/regression)``" both are e-processes, so the probability that the
  step ever passes is at most ``beta``.

Latency counts ``slow`` (the bucket at or below the bound) for the relative and pass tests and
``slow_above`` (the bucket at or above it) for the absolute fail test. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from rollout.core.judging.likelihoods import (
    ABSOLUTE_MULTIPLES,
    absolute_loglik,
    fail_alternatives,
    log_add,
    log_sum_exp,
    pass_alternatives,
    ratio_grid,
    relative_loglik,
)
from rollout.core.judging.memory import LOG_ZERO, JudgeMemory, SLOMemory
from rollout.core.readings import ArmCounts
from rollout.policy.analysis import Analysis

SUSTAIN_S = 180.0  # the absolute fail test needs this long of a raised rate to fail on its own


@dataclass(frozen=True)
class SLOSpec:
    """One judged SLO: its limit (a rate) and which count each test uses."""

    name: str
    limit: float
    compared: Callable[[ArmCounts], float]  # relative and pass tests (latency: slow, bucket at/below)
    above: Callable[[ArmCounts], float]  # absolute fail test (latency: slow_above, bucket at/above)


def slo_specs(analysis: Analysis) -> tuple[SLOSpec, ...]:
    """The SLOs the policy asks for, in a stable order (errorRate, latency)."""
    specs: list[SLOSpec] = []
    if analysis.slos.error_rate is not None:
        specs.append(SLOSpec("errorRate", analysis.slos.error_rate.max, lambda a: a.errors, lambda a: a.errors))
    if analysis.slos.latency is not None:
        specs.append(SLOSpec("latency", analysis.slos.latency.max_slow_share, lambda a: a.slow, lambda a: a.slow_above))
    return tuple(specs)


def alpha_per_slo(analysis: Analysis) -> float:
    """``alpha`` split evenly across the judged SLOs (Bonferroni)."""
    slos = (analysis.slos.error_rate is not None) + (analysis.slos.latency is not None)
    return analysis.sequential.alpha / max(slos, 1)


def baseline(spec: SLOSpec, stable_run: ArmCounts, count: Callable[[ArmCounts], float]) -> float:
    """``max(SLO, stable's rate over the run)``: what the canary is held to when stable has no traffic."""
    stable = count(stable_run) / stable_run.requests if stable_run.requests > 0 else 0.0
    return max(spec.limit, stable)


def fresh(analysis: Analysis, name: str) -> SLOMemory:
    options = analysis.sequential
    return SLOMemory(
        name=name,
        fail=(LOG_ZERO,) * len(fail_alternatives(options)),
        step=(0.0,) * len(ratio_grid(options)),
        absolute=(0.0,) * len(ABSOLUTE_MULTIPLES),
    )


def fitted(analysis: Analysis, slo: SLOMemory | None, name: str) -> SLOMemory:
    """``slo``, or a fresh memory when there is none or its shape does not fit the options."""
    new = fresh(analysis, name)
    if slo is None or tuple(map(len, (slo.fail, slo.step, slo.absolute))) != tuple(
        map(len, (new.fail, new.step, new.absolute))
    ):
        return new
    return slo


def restart(slo: SLOMemory, steps: int) -> SLOMemory:
    """Start a new fail e-process (weight ``1/steps``) at a weight step; clear per-step evidence."""
    share = -math.log(max(steps, 1))
    return replace(slo, fail=tuple(log_add(f, share) for f in slo.fail))


def clear_step(analysis: Analysis, slo: SLOMemory) -> SLOMemory:
    new = fresh(analysis, slo.name)
    return replace(slo, step=new.step, absolute=new.absolute)


@dataclass(frozen=True)
class Observed:
    """One interval as the evidence sees it: its counts and where it sits in the step."""

    canary: ArmCounts
    stable: ArmCounts
    seconds: float
    at_weight: bool
    full_weight: bool  # the step's weight is 100: stable has no traffic by design


def absorb(analysis: Analysis, spec: SLOSpec, slo: SLOMemory, iv: Observed, stable_run: ArmCounts) -> SLOMemory:
    """``slo`` after one interval (``stable_run``: stable's run counts *before* this interval)."""
    options = analysis.sequential
    tau = options.dispersion
    fails = fail_alternatives(options)
    fail = list(slo.fail)
    step = list(slo.step)
    absolute = list(slo.absolute)
    both = iv.canary.requests > 0 and iv.stable.requests > 0
    if both and options.mode != "absolute":
        x, y = spec.compared(iv.canary), spec.compared(iv.stable)
        if x + y > 0:
            share = iv.canary.requests / (iv.canary.requests + iv.stable.requests)
            grid = ratio_grid(options)
            loglik = {r: relative_loglik(x, x + y, share, r, tau) for r in grid}
            null = loglik[options.tolerance]
            fail = [f + loglik[a] - null for f, (a, _) in zip(fail, fails, strict=True)]
            if iv.at_weight:
                step = [s + loglik[r] for s, r in zip(step, grid, strict=True)]
                top = max(step)
                step = [s - top for s in step]
    elif iv.canary.requests > 0 and options.mode != "relative":
        n, x = iv.canary.requests, spec.above(iv.canary)
        level = baseline(spec, stable_run, spec.above)
        null = absolute_loglik(x, n, options.tolerance * level, tau)
        cap = math.log(1 / alpha_per_slo(analysis)) * min(1.0, max(iv.seconds, 0.0) / SUSTAIN_S)
        fail = [
            f + min(absolute_loglik(x, n, a * level, tau) - null, cap) for f, (a, _) in zip(fail, fails, strict=True)
        ]
    if iv.at_weight and iv.canary.requests > 0 and options.mode != "relative":
        n, x = iv.canary.requests, spec.compared(iv.canary)
        level = pass_level(analysis, spec, stable_run, iv.full_weight)
        null = absolute_loglik(x, n, level, tau)
        absolute = [
            s + absolute_loglik(x, n, c * level, tau) - null
            for s, (c, _) in zip(absolute, ABSOLUTE_MULTIPLES, strict=True)
        ]
    if slo.failed:  # a test that rejected stays rejected: its evidence is kept as it was
        fail = list(slo.fail)
    return replace(
        slo, fail=tuple(map(_clamp, fail)), step=tuple(map(_clamp, step)), absolute=tuple(map(_clamp, absolute))
    )


def pass_level(analysis: Analysis, spec: SLOSpec, stable_run: ArmCounts, full_weight: bool) -> float:
    """The null level of the absolute pass test: ``SLO/regression`` (the floor) while stable has
    traffic, ``regression * max(SLO, stable's rate)`` at the 100% step (or in ``mode: absolute``)."""
    regression = analysis.sequential.regression
    if full_weight or analysis.sequential.mode == "absolute":
        return regression * baseline(spec, stable_run, spec.compared)
    return spec.limit / regression


def _clamp(value: float) -> float:
    return min(max(value, LOG_ZERO), -LOG_ZERO)


@dataclass(frozen=True)
class Weighed:
    """One SLO's evidence, ready for a verdict (log e-values against their thresholds)."""

    failed: bool
    fail_evidence: float
    fail_threshold: float
    pass_evidence: float
    pass_threshold: float
    ratio_low: float | None  # always-valid interval of this step's canary/stable ratio (None: no data)
    ratio_high: float | None  # None also when unbounded above


def weigh(analysis: Analysis, slo: SLOMemory, memory: JudgeMemory, steps: int) -> Weighed:
    """Weigh one SLO's evidence (a pure function of the memory)."""
    options = analysis.sequential
    alpha = alpha_per_slo(analysis)
    unstarted = max(steps - memory.restarts, 0) / max(steps, 1)
    fails = fail_alternatives(options)
    fail_values = [*slo.fail, 0.0]
    fail_weights = [w for _, w in fails] + [unstarted]
    fail_ev = log_sum_exp(fail_values, fail_weights) if any(w > 0 for w in fail_weights) else LOG_ZERO
    fail_thr = math.log(1 / alpha)
    grid = ratio_grid(options)
    loglik = dict(zip(grid, slo.step, strict=True))
    passes = pass_alternatives(options)
    relative = log_sum_exp((loglik[a] - loglik[options.regression] for a, _ in passes), (w for _, w in passes))
    absolute = log_sum_exp(slo.absolute, (w for _, w in ABSOLUTE_MULTIPLES))
    if options.mode == "relative":
        pass_ev = relative
    elif options.mode == "absolute":
        pass_ev = absolute
    else:
        pass_ev = log_sum_exp((relative, absolute), (0.5, 0.5))
    low: float | None = None
    high: float | None = None
    if memory.canary.requests > 0 and memory.stable.requests > 0:
        mixture = log_sum_exp(slo.step, [1.0 / len(grid)] * len(grid))
        kept = [r for r in grid if mixture - loglik[r] < math.log(1 / alpha)]
        low = 0.0 if kept[0] == grid[0] else kept[0]
        high = None if kept[-1] == grid[-1] else kept[-1]
    return Weighed(
        failed=slo.failed or fail_ev >= fail_thr,
        fail_evidence=fail_ev,
        fail_threshold=fail_thr,
        pass_evidence=pass_ev,
        pass_threshold=math.log(1 / options.beta),
        ratio_low=low,
        ratio_high=high,
    )
