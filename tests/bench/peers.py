"""The judges the benchmark compares: ours (through ``rollout.core.judging.judge``), a Flagger-style
fixed-threshold rule and a Kayenta-style Mann-Whitney rule, behind one small interface.

Owns the two peer rules as their users run them by default, on the same intervals ours gets:

* **Flagger-style**: every tick with a new interval, the canary's 5xx share over that interval
  against ``errorRate.max``, its p99 latency (``histogram_quantile``: linear interpolation in
  Envoy's 250-500 ms bucket) against ``latency.max`` and custom metrics against their max; an
  interval where the canary served nothing is a failed check ("no values found"); roll back at
  ``threshold`` failed checks.
* **Kayenta-style**: every tick, a one-sided Mann-Whitney test of the canary's per-interval error
  rates (and shares slower than 250 ms) against stable's since the step started; roll back when
  either is higher at ``alpha``; no verdict with fewer than ``min_points`` intervals; a step
  without stable traffic (100%) has no baseline and passes. It compares canary with stable only,
  so it has no rule for a custom metric's fixed bound (the table says n/a).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from rollout.core.judging import JudgeMemory, judge
from rollout.core.judging.base import JudgeInput
from rollout.core.verdicts import VerdictKind
from rollout.policy.analysis import Analysis


@dataclass(frozen=True)
class Call:
    """What the benchmark's engine stand-in needs from a judge on one tick."""

    passed: bool  # the step may end (once its minimum time is over)
    rollback: bool


class BenchJudge(Protocol):
    @property
    def name(self) -> str: ...

    def fresh(self) -> Any: ...

    def __call__(self, memory: Any, inp: JudgeInput) -> tuple[Call, Any]: ...


@dataclass(frozen=True)
class Ours:
    """``rollout.core.judging.judge``: a step may end on PASS with enough data."""

    analysis: Analysis
    name: str = "rollout"

    def fresh(self) -> JudgeMemory:
        return JudgeMemory()

    def __call__(self, memory: JudgeMemory, inp: JudgeInput) -> tuple[Call, JudgeMemory]:
        verdict, memory = judge(self.analysis, memory, inp)
        return Call(verdict.kind is VerdictKind.PASS and verdict.enough_data, verdict.rollback), memory


def p99_ms(requests: float, above_250: float, above_500: float) -> float:
    """Prometheus' ``histogram_quantile(0.99, ...)`` from the 250 ms and 500 ms buckets (linear
    interpolation inside the bucket; below 250 ms taken as 250 ms, enough for a 300 ms bound)."""
    below_250 = (requests - above_250) / requests
    below_500 = (requests - above_500) / requests
    if below_250 >= 0.99:
        return 250.0
    if below_500 < 0.99:
        return math.inf
    return 250.0 + 250.0 * (0.99 - below_250) / (below_500 - below_250)


@dataclass(frozen=True)
class Flagger:
    error_max: float = 0.01
    latency_max_ms: float = 300.0
    threshold: int = 2
    gauge_max: tuple[tuple[str, float], ...] = ()  # custom metrics (name, max): a thresholdRange check
    name: str = "Flagger-style (threshold 2)"

    def fresh(self) -> int:
        return 0

    def __call__(self, memory: int, inp: JudgeInput) -> tuple[Call, int]:
        failures = memory
        iv = inp.interval
        if iv is None or (inp.weight is not None and inp.weight <= 0):  # None: an A/B step, it has traffic
            return Call(False, False), failures
        c = iv.canary
        ok = c.requests > 0 and c.errors / c.requests <= self.error_max
        ok = ok and p99_ms(c.requests, c.slow, c.slow_above) <= self.latency_max_ms
        ok = ok and all(inp.custom.get(name, math.inf) <= top for name, top in self.gauge_max)
        failures += 0 if ok else 1
        return Call(ok, failures >= self.threshold), failures


@dataclass(frozen=True)
class Points:
    """Per-interval rates since the step started: (canary errors, stable errors, canary slow, stable slow)."""

    rows: tuple[tuple[float, float, float, float], ...] = ()
    weight: int = -1


def mann_whitney_greater(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> float:
    """One-sided Mann-Whitney p-value that ``x`` tends to be larger than ``y`` (normal approximation
    with tie and continuity corrections, as scipy's asymptotic method)."""
    n1, n2 = len(x), len(y)
    both = np.concatenate([x, y])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(len(both))
    sorted_values = both[order]
    _, starts, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    average = starts + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    total = n1 + n2
    ties = float(((counts**3) - counts).sum())
    var = n1 * n2 / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    if var <= 0:
        return 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class Kayenta:
    alpha: float = 0.01
    min_points: int = 3
    name: str = "Kayenta-style (Mann-Whitney)"

    def fresh(self) -> Points:
        return Points()

    def __call__(self, memory: Points, inp: JudgeInput) -> tuple[Call, Points]:
        points = memory
        weight = inp.weight if inp.weight is not None else -1  # -1: an A/B step (share unknown)
        if inp.new_step or points.weight != weight:
            points = Points((), weight)
        iv = inp.interval
        if weight >= 100:
            return Call(True, False), points
        if iv is not None and inp.at_weight and iv.canary.requests > 0 and iv.stable.requests > 0:
            c, s = iv.canary, iv.stable
            row = (c.errors / c.requests, s.errors / s.requests, c.slow / c.requests, s.slow / s.requests)
            points = replace(points, rows=(*points.rows, row))
        if len(points.rows) < self.min_points:
            return Call(False, False), points
        data = np.array(points.rows)
        worse = any(mann_whitney_greater(data[:, i], data[:, i + 1]) < self.alpha for i in (0, 2))
        return Call(not worse, worse), points
