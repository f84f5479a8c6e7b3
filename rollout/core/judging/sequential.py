"""The sequential judge (``judge: sequential``): always-valid tests on per-interval counts.

Owns the statistics that turn one interval's counts (requests, errors, slow requests per arm) plus
the evidence carried in ``JudgeMemory`` into a pass / fail / hold ``Verdict`` with its numbers.
It must not count failures across intervals (the engine does), read a clock or do any I/O.

For each SLO (error rate: errors; latency: requests slower than the bound) two e-processes run:

* **relative** (canary vs stable): given ``k`` events in an interval, the canary's share of them
  is Binomial(k, p) with ``p = s*r / (s*r + 1 - s)``, ``s`` the canary's share of the interval's
  requests and ``r`` the canary/stable rate ratio. The log-likelihood ratio of ``r`` against
  ``r = 1`` adds ``x*log(r) - k*log(1 + s*(r - 1))`` per interval (``x`` canary events); it is
  kept for a fixed grid of ratios ``2^(j/4)``. The fail test is a mixture over grid ratios above
  ``tolerance`` (half the mass on ``regression``) against ``r = tolerance``; the early-pass (mirror)
  test is a mixture over ratios below ``regression`` (half on ``tolerance``) against
  ``r = regression``. The canary
  share is per interval, so evidence carries across weight steps. Ville's inequality bounds the
  probability that a canary no worse than ``tolerance`` x stable *ever* fails by the test's alpha.
  The always-valid confidence set for ``r`` is every grid ratio whose likelihood is within
  ``log(1/alpha)`` of the uniform mixture over the whole grid.
* **absolute** (canary vs the SLO ``p0``): Wald's SPRT of ``p0`` against ``regression * p0`` on
  the canary's counts alone; fail at ``log(1/alpha)``, pass (mirror) at ``-log(1/beta)``.

``alpha`` is split evenly across the SLOs; in ``auto`` mode each SLO's share goes 90% to the
relative test and 10% to the absolute test, which only sees intervals where stable had no
traffic. A failed test stays failed (its e-process has rejected). A check passes when the canary
is shown to be below ``regression`` x stable or below ``regression`` x the SLO, and at least
``minRequests`` canary requests were judged. Missing data never passes; counter resets are
dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from rollout.core.states import (
    ArmCounts,
    Check,
    JudgeMemory,
    MetricsSample,
    Outcome,
    Verdict,
    VerdictKind,
)
from rollout.policy.models import Analysis, NoDataPolicy, SequentialOptions

GRID_EXPONENTS = range(-12, 17)  # ratios 2^(j/4): 1/8 .. 16, steps of about 19%
ABSOLUTE_ALPHA_SHARE = 0.1  # auto mode: the absolute fallback's share of an SLO's alpha
_P_MAX = 0.999


@dataclass(frozen=True)
class SLOSpec:
    """One judged SLO: its name, its absolute limit (a share) and which count it looks at."""

    name: str
    limit: float
    events: Callable[[ArmCounts], float]


def slo_specs(analysis: Analysis) -> tuple[SLOSpec, ...]:
    """The SLOs the policy asks for, in a stable order (errorRate, latency)."""
    specs: list[SLOSpec] = []
    if analysis.slos.error_rate is not None:
        specs.append(SLOSpec("errorRate", analysis.slos.error_rate.max, lambda a: a.errors))
    if analysis.slos.latency is not None:
        specs.append(SLOSpec("latency", analysis.slos.latency.max_slow_share, lambda a: a.slow))
    return tuple(specs)


def ratio_grid(options: SequentialOptions) -> tuple[float, ...]:
    """The ratios whose log-likelihood the relative test keeps (with tolerance and regression)."""
    base = {2.0 ** (j / 4) for j in GRID_EXPONENTS}
    return tuple(sorted(base | {options.tolerance, options.regression}))


def _half_on(point: float, ratios: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """Mixture weights: half the mass on ``point``, half spread evenly over ``ratios``."""
    return tuple((r, 0.5 / len(ratios) + (0.5 if r == point else 0.0)) for r in ratios)


def fail_mixture(options: SequentialOptions) -> tuple[tuple[float, float], ...]:
    """(ratio, weight) of the fail test's alternatives: every grid ratio above ``tolerance``,
    half the mass on ``regression`` (the ratio the policy says must be caught)."""
    alternatives = tuple(r for r in ratio_grid(options) if r > options.tolerance)
    return _half_on(options.regression, alternatives)


def pass_mixture(options: SequentialOptions) -> tuple[tuple[float, float], ...]:
    """(ratio, weight) of the early-pass test's alternatives: grid ratios from
    ``min(tolerance, regression/8)`` up to ``regression`` (excluded), half the mass on ``tolerance``."""
    low = min(options.tolerance, options.regression / 8)
    alternatives = tuple(r for r in ratio_grid(options) if low <= r < options.regression)
    return _half_on(options.tolerance, alternatives)


def relative_increment(ratio: float, share: float, canary_events: float, total_events: float) -> float:
    """Log-likelihood ratio of ``ratio`` against 1 for one interval of the conditional binomial."""
    return canary_events * math.log(ratio) - total_events * math.log1p(share * (ratio - 1.0))


def absolute_increment(limit: float, regression: float, requests: float, events: float) -> float:
    """Wald SPRT log-likelihood ratio of ``regression * limit`` against ``limit`` for one interval."""
    p0 = min(max(limit, 1e-9), 0.5)
    p1 = min(regression * p0, _P_MAX)
    return events * math.log(p1 / p0) + (requests - events) * math.log((1 - p1) / (1 - p0))


def log_mean_exp(values: Iterable[float], weights: Iterable[float] | None = None) -> float:
    """``log(sum(w * exp(v)))``, computed stably; equal weights summing to 1 by default."""
    items = list(values)
    ws = list(weights) if weights is not None else [1.0 / len(items)] * len(items)
    top = max(items)
    return top + math.log(sum(w * math.exp(v - top) for v, w in zip(items, ws, strict=True)))


def _key(slo: str, ratio: float) -> str:
    return f"{slo}.L@{ratio:.6g}"


@dataclass(frozen=True)
class Alphas:
    """The error budgets of one SLO's tests."""

    relative: float
    absolute: float
    beta: float


def alphas(options: SequentialOptions, slo_count: int) -> Alphas:
    per_slo = options.alpha / max(slo_count, 1)
    if options.mode == "relative":
        return Alphas(per_slo, 0.0, options.beta)
    if options.mode == "absolute":
        return Alphas(0.0, per_slo, options.beta)
    share = ABSOLUTE_ALPHA_SHARE
    return Alphas(per_slo * (1 - share), per_slo * share, options.beta)


def _usable(sample: MetricsSample) -> tuple[ArmCounts, ArmCounts] | str:
    """The interval's (canary, stable) counts, or why the interval cannot be used."""
    if sample.outcome is Outcome.COUNTER_RESET:
        return "interval dropped: a counter reset inside the window"
    if sample.outcome is not Outcome.OK:
        why = f" ({sample.detail})" if sample.detail else ""
        return f"no usable data: {sample.outcome.value}{why}"
    canary = sample.canary
    if canary is None or canary.requests <= 0:
        return "no usable data: the canary served no requests in this interval"
    stable = sample.stable or ArmCounts(0.0, 0.0, 0.0)
    values = (canary.requests, canary.errors, canary.slow, stable.requests, stable.errors, stable.slow)
    if any(v < 0 or math.isnan(v) for v in values):
        return "interval dropped: negative or NaN counts (a counter reset)"

    def clean(arm: ArmCounts) -> ArmCounts:
        return ArmCounts(arm.requests, min(arm.errors, arm.requests), min(arm.slow, arm.requests))

    return clean(canary), clean(stable)


def _absorb(
    analysis: Analysis, memory: JudgeMemory, canary: ArmCounts, stable: ArmCounts, canary_share: float
) -> tuple[JudgeMemory, str]:
    """Add one usable interval to the memory; also says which test(s) it fed."""
    options = analysis.sequential
    relative = stable.requests > 0 and canary_share < 1.0
    if options.mode == "absolute":
        feeds = "absolute"
    elif relative:
        feeds = "relative"
    else:
        feeds = "absolute" if options.mode == "auto" else "none"
    values: dict[str, float] = {}
    share = canary.requests / (canary.requests + stable.requests)
    for slo in slo_specs(analysis):
        x, y = slo.events(canary), slo.events(stable)
        abs_step = absolute_increment(slo.limit, options.regression, canary.requests, x)
        values[f"{slo.name}.absAll"] = memory.get(f"{slo.name}.absAll") + abs_step
        if feeds == "relative":
            for ratio in ratio_grid(options):
                key = _key(slo.name, ratio)
                values[key] = memory.get(key) + relative_increment(ratio, share, x, x + y)
            values[f"{slo.name}.relN"] = memory.get(f"{slo.name}.relN") + canary.requests
            values[f"{slo.name}.relK"] = memory.get(f"{slo.name}.relK") + x + y
        elif feeds == "absolute":
            values[f"{slo.name}.abs"] = memory.get(f"{slo.name}.abs") + abs_step
            values[f"{slo.name}.absN"] = memory.get(f"{slo.name}.absN") + canary.requests
    counted = replace(
        memory,
        intervals=memory.intervals + 1,
        canary=_add(memory.canary, canary),
        stable=_add(memory.stable, stable),
    )
    return counted.with_values(**values), feeds


def _add(a: ArmCounts, b: ArmCounts) -> ArmCounts:
    return ArmCounts(a.requests + b.requests, a.errors + b.errors, a.slow + b.slow)


@dataclass(frozen=True)
class Evidence:
    """One SLO's evidence, as the verdict reports it (log e-values against their thresholds)."""

    slo: SLOSpec
    failed: bool
    passed: bool
    fail_evidence: float
    fail_threshold: float
    pass_evidence: float
    pass_threshold: float
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    value: float | None
    limit: float
    detail: str


def evaluate(analysis: Analysis, memory: JudgeMemory, slo: SLOSpec, slo_count: int) -> Evidence:
    """Weigh one SLO's accumulated evidence (pure function of the memory)."""
    options = analysis.sequential
    budget = alphas(options, slo_count)
    grid = ratio_grid(options)
    loglik = {r: memory.get(_key(slo.name, r)) for r in grid}
    has_relative = memory.get(f"{slo.name}.relK") > 0
    fails, passes = fail_mixture(options), pass_mixture(options)
    rel_fail = log_mean_exp((loglik[a] - loglik[options.tolerance] for a, _ in fails), (w for _, w in fails))
    rel_pass = log_mean_exp((loglik[a] - loglik[options.regression] for a, _ in passes), (w for _, w in passes))
    abs_fail = memory.get(f"{slo.name}.abs")
    abs_pass = -memory.get(f"{slo.name}.absAll")
    rel_thr = math.log(1 / budget.relative) if budget.relative > 0 else math.inf
    abs_thr = math.log(1 / budget.absolute) if budget.absolute > 0 else math.inf
    pass_thr = math.log(1 / budget.beta)
    failed_now = rel_fail >= rel_thr or abs_fail >= abs_thr
    failed = failed_now or memory.get(f"{slo.name}.failed") > 0
    enough = memory.canary.requests >= analysis.min_requests and memory.canary.requests > 0
    passed = not failed and enough and (rel_pass >= pass_thr or abs_pass >= pass_thr)
    # Report the test that is closest to deciding.
    use_abs = not has_relative or (abs_thr < math.inf and abs_fail - abs_thr > rel_fail - rel_thr)
    fail_ev, fail_thr = (abs_fail, abs_thr) if use_abs else (rel_fail, rel_thr)
    pass_ev = max(rel_pass, abs_pass)
    c_n, c_x = memory.canary.requests, slo.events(memory.canary)
    s_n, s_x = memory.stable.requests, slo.events(memory.stable)
    ratio = _rate_ratio(c_x, c_n, s_x, s_n)
    low, high = (None, None)
    if has_relative:
        conf_alpha = budget.relative if budget.relative > 0 else budget.beta
        low, high = _ratio_interval(loglik, conf_alpha)
    parts = [
        f"{slo.name}: canary {_fmt_n(c_x)}/{_fmt_n(c_n)} ({_pct(c_x, c_n)})"
        f" vs stable {_fmt_n(s_x)}/{_fmt_n(s_n)} ({_pct(s_x, s_n)}), SLO {slo.limit:.4g}",
        f"ratio {_fmt_ratio(ratio)}"
        + (f" [{_fmt_ratio(low)}, {_fmt_ratio(high)}] always-valid" if has_relative else ""),
        f"fail evidence {fail_ev:.2f}/{fail_thr:.2f} ({'absolute' if use_abs else 'relative'})",
        f"pass evidence {pass_ev:.2f}/{pass_thr:.2f}",
    ]
    if not enough:
        parts.append(f"{_fmt_n(c_n)} of {analysis.min_requests} canary requests")
    return Evidence(
        slo=slo,
        failed=failed,
        passed=passed,
        fail_evidence=fail_ev,
        fail_threshold=fail_thr,
        pass_evidence=pass_ev,
        pass_threshold=pass_thr,
        ratio=ratio,
        ratio_low=low,
        ratio_high=high,
        value=_finite(ratio) if has_relative else (c_x / c_n if c_n > 0 else None),
        limit=options.tolerance if has_relative else slo.limit,
        detail="; ".join(parts),
    )


def _ratio_interval(loglik: dict[float, float], alpha: float) -> tuple[float, float]:
    """Grid ratios not rejected by the uniform-mixture e-process at level ``alpha``.

    Returns 0 / inf when the set reaches the ends of the grid.
    """
    grid = sorted(loglik)
    mixture = log_mean_exp(loglik.values())
    kept = [r for r in grid if mixture - loglik[r] < math.log(1 / alpha)]
    low = 0.0 if kept[0] == grid[0] else kept[0]
    high = math.inf if kept[-1] == grid[-1] else kept[-1]
    return low, high


def _finite(value: float | None) -> float | None:
    """A value fit for status, metrics and JSON: an unbounded ratio (stable had no errors) is None;
    the detail text still says "inf"."""
    return value if value is not None and math.isfinite(value) else None


def _rate_ratio(c_x: float, c_n: float, s_x: float, s_n: float) -> float | None:
    if c_n <= 0 or s_n <= 0:
        return None
    if s_x <= 0:
        return None if c_x <= 0 else math.inf
    return (c_x / c_n) / (s_x / s_n)


def _fmt_n(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def _pct(num: float, den: float) -> str:
    return f"{100 * num / den:.3g}%" if den > 0 else "n/a"


def _fmt_ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:.3g}"


def judge_sequential(
    analysis: Analysis, memory: JudgeMemory, sample: MetricsSample, canary_share: float
) -> tuple[Verdict, JudgeMemory]:
    """Judge one interval: add it to the carried evidence, then pass, fail or hold.

    ``canary_share`` is the route's canary weight as a fraction (0..1); at 1.0 stable carries no
    traffic by design and the interval feeds the absolute test (``auto`` mode).
    """
    if not 0.0 <= canary_share <= 1.0:
        raise ValueError(f"canary_share must be a fraction in [0, 1], got {canary_share}")
    specs = slo_specs(analysis)
    if not specs:
        summary = "hold: no errorRate or latency SLO to judge (the sequential judge needs one)"
        return Verdict(VerdictKind.HOLD, (), False, summary, sample.canary, sample.stable), memory
    usable = _usable(sample)
    note = ""
    if isinstance(usable, str):
        note = usable
    else:
        memory, feeds = _absorb(analysis, memory, *usable, canary_share)
        if feeds == "none":
            note = "interval skipped: relative mode and stable served no traffic"
    evidence = [evaluate(analysis, memory, slo, len(specs)) for slo in specs]
    newly_failed = {f"{e.slo.name}.failed": 1.0 for e in evidence if e.failed}
    if newly_failed:
        memory = memory.with_values(**newly_failed)
    checks = tuple(_check(e) for e in evidence)
    enough = memory.canary.requests >= analysis.min_requests and memory.canary.requests > 0
    if any(e.failed for e in evidence):
        kind = VerdictKind.FAIL
    elif isinstance(usable, str):
        no_data_fails = analysis.no_data is NoDataPolicy.FAIL
        kind = VerdictKind.FAIL if no_data_fails and sample.outcome is not Outcome.COUNTER_RESET else VerdictKind.HOLD
        note += f"; noData={analysis.no_data.value}" + ("" if no_data_fails else ", missing data never passes")
    elif all(e.passed for e in evidence):
        kind = VerdictKind.PASS
    else:
        kind = VerdictKind.HOLD
    summary = _summary(kind, evidence, memory, note, canary_share)
    verdict = Verdict(
        kind,
        checks,
        enough and not isinstance(usable, str),
        summary,
        memory.canary,
        memory.stable,
        conclusive=kind is VerdictKind.PASS or any(e.failed for e in evidence),
    )
    return verdict, memory


def _check(e: Evidence) -> Check:
    verdict = VerdictKind.FAIL if e.failed else VerdictKind.PASS if e.passed else VerdictKind.HOLD
    evidence, threshold = (e.pass_evidence, e.pass_threshold) if e.passed else (e.fail_evidence, e.fail_threshold)
    return Check(
        name=e.slo.name,
        verdict=verdict,
        value=e.value,
        limit=e.limit,
        detail=e.detail,
        evidence=evidence,
        threshold=threshold if math.isfinite(threshold) else None,
    )


def _summary(kind: VerdictKind, evidence: list[Evidence], memory: JudgeMemory, note: str, canary_share: float) -> str:
    head = {
        VerdictKind.FAIL: "fail: the canary is worse",
        VerdictKind.PASS: "pass: the canary is within bounds",
        VerdictKind.HOLD: "hold: not enough evidence yet",
    }[kind]
    failing = [e.slo.name for e in evidence if e.failed]
    if failing:
        head += f" on {', '.join(failing)}"
    tail = f"{memory.intervals} intervals judged, canary weight {100 * canary_share:.4g}%"
    body = " | ".join(e.detail for e in evidence)
    return f"{head} ({tail}{'; ' + note if note else ''}) — {body}"
