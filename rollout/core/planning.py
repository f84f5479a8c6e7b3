"""The step schedule of a policy: weights, pauses, gates and the minimum time to promote.

Owns the arithmetic behind ``rollout plan``. Pure; it reads only the policy (and, optionally, an
expected request rate for judge sizing done by ``rollout.core.sizing``, and the latency histogram's
buckets for the bucket warning of ``rollout.core.judging.latency``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from rollout.core.judging.latency import ENVOY_DEFAULT_BUCKETS_MS, bucket_warning
from rollout.core.sizing import StepSizing, size_step
from rollout.core.ticking import fmt
from rollout.policy.analysis import JudgeKind
from rollout.policy.models import Rollout


@dataclass(frozen=True)
class PlannedStep:
    number: int  # 1-based
    kind: str  # setWeight | pause | approval
    canary: int  # canary weight while the step runs
    min_duration: timedelta  # shortest time the step can take
    gate: str  # what ends the step
    unbounded: bool  # a person must act (pause without duration, approval)
    sizing: StepSizing | None = None  # with an expected request rate: what judging this step takes


@dataclass(frozen=True)
class Plan:
    rollout: str
    revision: str
    router: str
    steps: tuple[PlannedStep, ...]
    min_time_to_promote: timedelta
    needs_people: bool
    warnings: tuple[str, ...]
    expected_time_to_promote: timedelta | None = None  # with --rps: a healthy canary, steps lasting as sized


def plan(policy: Rollout, rps: float | None = None, buckets_ms: Sequence[float] = ENVOY_DEFAULT_BUCKETS_MS) -> Plan:
    """The schedule the engine will follow if every judgement passes as early as it can.

    With ``rps`` (expected total requests per second) and the sequential judge, every setWeight
    step is sized: how long it
    takes to catch a ``sequential.regression`` regression at that weight and to pass a healthy
    canary, with warnings for steps that cannot do either within the progress deadline, and the
    expected time to promote a healthy canary. ``buckets_ms``: the latency histogram's bucket bounds
    (a warning when the latency SLO's bound is not one of them).
    """
    spec, analysis = policy.spec, policy.spec.analysis
    interval = analysis.interval
    # A setWeight step passes once the route has carried its weight for stepDuration and a verdict
    # on data taken at that weight passed: the first such data is one interval of readings that
    # start after the change (the earliest verdict comes one interval after the first scrape that
    # follows the change), so never sooner than max(stepDuration, interval) on the interval grid.
    judged = _ceil_to(max(analysis.effective_step_duration, interval), interval)
    rows: list[PlannedStep] = []
    canary = 0
    warnings: list[str] = []
    for i, step in enumerate(spec.steps, start=1):
        if step.set_weight is not None:
            canary = step.set_weight
            if canary == 0:
                gate = f"wait {fmt(judged)} (nothing to judge at 0%)"
            else:
                gate = (
                    f"{fmt(judged)} at {canary}% and a passing {analysis.judge.value} verdict on "
                    f">= {analysis.min_requests} canary requests at {canary}%"
                )
            rows.append(PlannedStep(i, "setWeight", canary, judged, gate, unbounded=False))
        elif step.pause is not None:
            if step.pause.duration is None:
                rows.append(PlannedStep(i, "pause", canary, timedelta(0), "until resumed", unbounded=True))
            else:
                rows.append(
                    PlannedStep(
                        i,
                        "pause",
                        canary,
                        step.pause.duration,
                        f"wait {fmt(step.pause.duration)}",
                        unbounded=False,
                    )
                )
        else:
            approvals = spec.approvals
            who = f"{approvals.slack.channel}" if approvals.slack else "`rollout approve`"
            rows.append(
                PlannedStep(
                    i,
                    "approval",
                    canary,
                    timedelta(0),
                    f"approval ({who}); after {fmt(approvals.timeout)}: {approvals.on_timeout.value}",
                    unbounded=True,
                )
            )
    expected: timedelta | None = None
    if rps is not None and analysis.judge is JudgeKind.SEQUENTIAL:
        weight_steps = sum(1 for r in rows if r.kind == "setWeight" and r.canary > 0)
        rows = [_sized(policy, row, rps, weight_steps, warnings) for row in rows]
        expected = _expected(rows)
    if analysis.slos.latency is not None:
        latency_warning = bucket_warning(analysis.slos.latency.max.total_seconds() * 1000, buckets_ms)
        if latency_warning:
            warnings.append(latency_warning)
    if canary < 100:
        warnings.append(f"the last setWeight is {canary}%: promotion then moves the rest of the traffic in one jump")
    if not analysis.slos.error_rate and not analysis.slos.latency and not analysis.metrics:
        warnings.append("no SLOs and no metrics: every judgement passes on request count alone")
    total = sum((r.min_duration for r in rows), timedelta(0))
    return Plan(
        rollout=policy.key,
        revision=policy.revision,
        router=f"{spec.router.kind} {policy.route_namespace()}/{spec.router.ref.name}",
        steps=tuple(rows),
        min_time_to_promote=total,
        needs_people=any(r.unbounded for r in rows),
        warnings=tuple(warnings),
        expected_time_to_promote=expected,
    )


def _sized(policy: Rollout, row: PlannedStep, rps: float, weight_steps: int, warnings: list[str]) -> PlannedStep:
    if row.kind != "setWeight" or row.canary == 0:
        return row
    sizing = size_step(
        policy.spec.analysis,
        row.canary,
        rps,
        row.min_duration,
        weight_steps=weight_steps,
        deadline=policy.spec.progress_deadline,
    )
    if sizing.warning:
        warnings.append(f"step {row.number}: {sizing.warning}")
    return PlannedStep(row.number, row.kind, row.canary, row.min_duration, row.gate, row.unbounded, sizing)


def _expected(rows: list[PlannedStep]) -> timedelta | None:
    """A healthy canary's time to promote: sized steps last as long as passing takes (None when a
    step never passes or needs people)."""
    total = timedelta(0)
    for row in rows:
        if row.unbounded:
            return None
        if row.sizing is None:
            total += row.min_duration
            continue
        seconds = row.sizing.expected_seconds
        if seconds is None:
            return None
        total += max(row.min_duration, timedelta(seconds=seconds))
    return total


def _ceil_to(value: timedelta, grid: timedelta) -> timedelta:
    return grid * math.ceil(value / grid)
