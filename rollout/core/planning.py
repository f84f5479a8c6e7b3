"""The step schedule of a policy: weights, pauses, gates and the minimum time to promote.

Owns the arithmetic behind ``rollout plan``. Pure; it reads only the policy (and, optionally, an
expected request rate for judge sizing done by ``rollout.core.sizing``, and the latency histogram's
buckets for the bucket warning of ``rollout.core.judging.latency``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from rollout.core.judging.latency import ENVOY_DEFAULT_BUCKETS_MS, bucket_warning
from rollout.core.matches import route_match
from rollout.core.sizing import StepSizing, size_step
from rollout.core.ticking import fmt
from rollout.policy.analysis import JudgeKind
from rollout.policy.models import Rollout


@dataclass(frozen=True)
class PlannedStep:
    number: int  # 1-based
    kind: str  # setWeight | match | pause | approval
    canary: int  # canary weight while the step runs (an A/B step: of the requests that do not match)
    min_duration: timedelta  # shortest time the step can take
    gate: str  # what ends the step
    unbounded: bool  # a person must act (pause without duration, approval)
    sizing: StepSizing | None = None  # with an expected request rate: what judging this step takes
    expected_share: int | None = None  # an A/B step: the policy's estimate of the matching share (percent)
    ab: bool = False  # an A/B step's managed route is in place (a match step and the gates after it)


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
    step (and every A/B step with an ``expectedShare``: the canary's share of an A/B step is
    unknown until traffic arrives, which a warning says) is sized: how long it
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
    ab = False
    warnings: list[str] = []
    ab_at: dict[int, bool] = {}
    for i, step in enumerate(spec.steps, start=1):
        ab = step.match is not None or (ab and step.set_weight is None)
        ab_at[i] = ab
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
        elif step.match is not None:
            canary = spec.plan_weight(i - 1)
            rest = f" and {canary}% of the rest" if canary else ""
            gate = (
                f"{fmt(judged)} with requests matching {route_match(step.match)} on the canary{rest}, and a "
                f"passing {analysis.judge.value} verdict on >= {analysis.min_requests} canary requests"
            )
            share = step.match.expected_share
            rows.append(PlannedStep(i, "match", canary, judged, gate, unbounded=False, expected_share=share, ab=True))
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
    rows = [replace(row, ab=True) if ab_at[row.number] else row for row in rows]
    if rps is not None:
        for row in rows:
            if row.kind == "match":
                estimate = (
                    f"sized at the estimated {row.expected_share}% (match.expectedShare)"
                    if row.expected_share is not None
                    else "give match.expectedShare to size it"
                )
                warnings.append(
                    f"step {row.number}: the canary's share is unknown until traffic arrives (it gets the "
                    f"requests that match); {estimate}"
                )
    if rps is not None and analysis.judge is JudgeKind.SEQUENTIAL:
        weight_steps = sum(1 for r in rows if (r.kind == "setWeight" and r.canary > 0) or r.kind == "match")
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
    share = row.canary
    if row.kind == "match":
        if row.expected_share is None:
            return row  # the share is unknown: nothing to size (the warning says so)
        matching = row.expected_share / 100
        share = max(1, min(99, round(100 * (matching + (1 - matching) * row.canary / 100))))
    elif row.kind != "setWeight" or row.canary == 0:
        return row
    sizing = size_step(
        policy.spec.analysis,
        share,
        rps,
        row.min_duration,
        weight_steps=weight_steps,
        deadline=policy.spec.progress_deadline,
    )
    if sizing.warning:
        warnings.append(f"step {row.number}: {sizing.warning}")
    return replace(row, sizing=sizing)


def _expected(rows: list[PlannedStep]) -> timedelta | None:
    """A healthy canary's time to promote: sized steps last as long as passing takes (None when a
    step never passes or needs people)."""
    total = timedelta(0)
    for row in rows:
        if row.unbounded or (row.kind == "match" and row.sizing is None):  # people; a share nobody knows
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
