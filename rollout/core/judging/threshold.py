"""The fixed-threshold judge (Flagger/Argo style, explicit): each interval, the canary's error ratio,
slow-request share and custom metric values are held against the policy's limits.

Owns only the per-interval verdict; failure counting across intervals (``failureLimit``) belongs
to the engine. Missing or thin data never passes silently: ``noData`` decides hold/fail/pass and
the verdict says ``enough_data=False``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import replace

from rollout.core.states import (
    ArmCounts,
    Check,
    JudgeMemory,
    MetricsSample,
    Outcome,
    Verdict,
    VerdictKind,
)
from rollout.policy.models import Analysis, NoDataPolicy

_USABLE = (Outcome.OK, Outcome.PARTIAL)


def judge_threshold(
    analysis: Analysis, memory: JudgeMemory, sample: MetricsSample, canary_share: float
) -> tuple[Verdict, JudgeMemory]:
    """Judge one interval of ``sample`` against fixed limits; ``canary_share`` is unused here."""
    del canary_share
    canary = sample.canary if sample.outcome in _USABLE else None
    if canary is None or canary.requests < analysis.min_requests:
        why = _thin_reason(analysis, sample, canary)
        return _no_data(analysis, why, sample), memory

    checks: list[Check] = []
    slos = analysis.slos
    if slos.error_rate is not None:
        ratio = canary.errors / canary.requests
        limit = slos.error_rate.max
        checks.append(
            Check(
                name="errorRate",
                verdict=VerdictKind.FAIL if ratio > limit else VerdictKind.PASS,
                value=ratio,
                limit=limit,
                detail=f"error rate {_pct(ratio)} ({canary.errors:.0f}/{canary.requests:.0f}) "
                f"{'>' if ratio > limit else '<='} max {_pct(limit)}",
            )
        )
    if slos.latency is not None:
        share = canary.slow / canary.requests
        limit = slos.latency.max_slow_share
        bound_ms = slos.latency.max.total_seconds() * 1000
        checks.append(
            Check(
                name="latency",
                verdict=VerdictKind.FAIL if share > limit else VerdictKind.PASS,
                value=share,
                limit=limit,
                detail=f"{_pct(share)} of requests slower than {bound_ms:.0f}ms ({canary.slow:.0f}/"
                f"{canary.requests:.0f}); p{slos.latency.percentile:g} allows {_pct(limit)}",
            )
        )
    for metric in analysis.metrics:
        value = sample.custom.get(metric.name)
        if value is None or math.isnan(value):
            checks.append(
                Check(
                    name=metric.name,
                    verdict=VerdictKind.HOLD,
                    value=None,
                    limit=metric.max if metric.max is not None else metric.min,
                    detail=f"{metric.name}: no value",
                )
            )
            continue
        low = metric.min is not None and value < metric.min
        high = metric.max is not None and value > metric.max
        bound = metric.min if low else metric.max
        checks.append(
            Check(
                name=metric.name,
                verdict=VerdictKind.FAIL if (low or high) else VerdictKind.PASS,
                value=value,
                limit=bound,
                detail=f"{metric.name} = {value:.4g} ({_bounds(metric.min, metric.max)})",
            )
        )

    new_memory = _accumulate(memory, canary, sample.stable)
    if any(c.verdict is VerdictKind.FAIL for c in checks):
        kind = VerdictKind.FAIL
    elif any(c.verdict is VerdictKind.HOLD for c in checks):
        kind = VerdictKind.HOLD
    else:
        kind = VerdictKind.PASS
    ordered = sorted(checks, key=lambda c: c.verdict is not VerdictKind.FAIL)  # failures first
    summary = (
        "; ".join(("FAILED " if c.verdict is VerdictKind.FAIL else "") + c.detail for c in ordered)
        or f"{canary.requests:.0f} requests, no SLOs set"
    )
    return Verdict(
        kind=kind,
        checks=tuple(checks),
        enough_data=kind is not VerdictKind.HOLD,
        summary=summary,
        canary=canary,
        stable=sample.stable,
    ), new_memory


def _thin_reason(analysis: Analysis, sample: MetricsSample, canary: ArmCounts | None) -> str:
    if canary is None:
        detail = f": {sample.detail}" if sample.detail else ""
        return f"no canary data ({sample.outcome.value}){detail}"
    return f"only {canary.requests:.0f} canary requests, minRequests is {analysis.min_requests}"


def _no_data(analysis: Analysis, why: str, sample: MetricsSample) -> Verdict:
    kind = {
        NoDataPolicy.HOLD: VerdictKind.HOLD,
        NoDataPolicy.FAIL: VerdictKind.FAIL,
        NoDataPolicy.PASS: VerdictKind.PASS,
    }[analysis.no_data]
    return Verdict(
        kind=kind,
        checks=(),
        enough_data=False,
        summary=f"not enough data: {why} (noData: {analysis.no_data.value})",
        canary=sample.canary,
        stable=sample.stable,
    )


def _accumulate(memory: JudgeMemory, canary: ArmCounts, stable: ArmCounts | None) -> JudgeMemory:
    def add(a: ArmCounts, b: ArmCounts | None) -> ArmCounts:
        if b is None:
            return a
        return ArmCounts(a.requests + b.requests, a.errors + b.errors, a.slow + b.slow)

    return replace(
        memory,
        intervals=memory.intervals + 1,
        canary=add(memory.canary, canary),
        stable=add(memory.stable, stable),
    )


def _pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def _bounds(low: float | None, high: float | None) -> str:
    parts = []
    if low is not None:
        parts.append(f"min {low:.4g}")
    if high is not None:
        parts.append(f"max {high:.4g}")
    return ", ".join(parts)
