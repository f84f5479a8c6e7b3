"""The fixed-threshold judge (``judge: threshold``, Flagger/Argo style, explicit): the canary's error
rate, slow-request share and custom metrics held against the policy's limits.

Owns that rule. On every tick with a new interval it judges the current step's at-weight counts
(once they hold ``minRequests`` canary requests, the same meaning of ``minRequests`` as the
sequential judge); an interval that spans a weight change is judged on its own, for failures only.
Each tick with a failed check counts one failure; at ``failureLimit`` failures the verdict says
``rollback``. Latency is counted honestly at the histogram's buckets: it fails when the share
slower than the bucket at or above the bound exceeds the limit, passes when the share slower than
the bucket at or below it does not, and holds in between. Missing data: ``noData`` (shared rules).
Pure: no I/O, no clock.
"""

from __future__ import annotations

from rollout.core.judging.base import JudgeInput
from rollout.core.judging.latency import counted_as
from rollout.core.judging.memory import JudgeMemory, add_at_weight, enter_step
from rollout.core.judging.rules import Data, count, gauge_checks, no_data_kind, pct, screen, share_text, tally
from rollout.core.readings import ArmCounts, LatencyBuckets
from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.policy.analysis import Analysis


def judge_threshold(analysis: Analysis, memory: JudgeMemory, inp: JudgeInput) -> tuple[Verdict, JudgeMemory]:
    """Judge this tick's data against fixed limits; see the module docstring."""
    memory, _, _ = enter_step(memory, inp.weight, inp.new_step)
    data, note = screen(inp)
    needed = max(analysis.min_requests, 1)
    judged: ArmCounts | None = None
    whole_step = False
    if data is Data.USABLE and inp.interval is not None:
        iv = inp.interval
        if inp.at_weight:
            memory = add_at_weight(memory, iv.canary, iv.stable)
            if memory.canary.requests >= needed:
                judged, whole_step = memory.canary, True
        elif iv.canary.requests >= needed:
            judged = iv.canary
    checks = limit_checks(analysis, judged, inp.latency) if judged is not None else ()
    gauges = gauge_checks(analysis.metrics, inp.custom)
    everything = checks + gauges
    judged_now = data in (Data.USABLE, Data.MISSING)
    failing = [c for c in (checks + gauges if judged_now else checks) if c.verdict is VerdictKind.FAIL]
    no_data_fails = data is Data.MISSING and no_data_kind(analysis) is VerdictKind.FAIL
    counted = tally(analysis, memory, bool(failing) or no_data_fails)
    memory = counted.memory
    at = share_text(inp.weight)

    if counted.counted:
        kind, rollback = VerdictKind.FAIL, counted.rollback
        why = "; ".join(c.detail for c in failing) or f"{note} (noData: fail)"
        head = f"{'roll back' if rollback else 'fail'}: {why} ({counted.words(analysis)})"
    elif data is Data.MISSING:
        kind, rollback = no_data_kind(analysis), False
        head = f"{kind.value}: {note} (noData: {analysis.no_data.value}" + (
            ", lets the step end, never promotes)" if kind is VerdictKind.PASS else ")"
        )
    elif data is not Data.USABLE:
        kind, rollback = VerdictKind.HOLD, False
        head = f"hold: {note}"
    elif judged is None:
        kind, rollback = VerdictKind.HOLD, False
        head = f"hold: {count(memory.canary.requests)} of {analysis.min_requests} canary requests judged at {at}"
    elif not whole_step:
        kind, rollback = VerdictKind.HOLD, False
        head = "hold: this interval spans the weight change; it is judged for failures only"
    elif all(c.verdict is VerdictKind.PASS for c in everything):
        kind, rollback = VerdictKind.PASS, False
        head = f"pass: every check within its limit on {count(judged.requests)} canary requests at {at}"
    else:
        kind, rollback = VerdictKind.HOLD, False
        waiting = ", ".join(c.name for c in everything if c.verdict is not VerdictKind.PASS)
        head = f"hold: {waiting} not settled"
    verdict = Verdict(
        kind=kind,
        checks=everything,
        enough_data=memory.canary.requests >= needed and data is not Data.MISSING,
        summary=" | ".join([head, *(c.detail for c in everything)]),
        rollback=rollback,
        canary=memory.canary,
        stable=memory.stable,
    )
    return verdict, memory


def limit_checks(analysis: Analysis, canary: ArmCounts, latency: LatencyBuckets | None) -> tuple[Check, ...]:
    """The canary's error rate and slow share against the SLOs (``canary`` has requests)."""
    checks: list[Check] = []
    n = canary.requests
    if analysis.slos.error_rate is not None:
        limit = analysis.slos.error_rate.max
        value = canary.errors / n
        bad = value > limit
        checks.append(
            Check(
                "errorRate",
                VerdictKind.FAIL if bad else VerdictKind.PASS,
                value,
                limit,
                f"errorRate {pct(value)} ({count(canary.errors)}/{count(n)}) {'above' if bad else 'within'} "
                f"max {pct(limit)}",
                canary_rate=value,
                slo=limit,
                test="threshold",
            )
        )
    if analysis.slos.latency is not None:
        limit = analysis.slos.latency.max_slow_share
        below, above = canary.slow / n, canary.slow_above / n
        kind = VerdictKind.FAIL if above > limit else VerdictKind.PASS if below <= limit else VerdictKind.HOLD
        words = {
            VerdictKind.FAIL: f"{pct(above)} of requests slow, above",
            VerdictKind.PASS: f"{pct(below)} of requests slow, within",
            VerdictKind.HOLD: f"between {pct(above)} and {pct(below)} of requests slow (the buckets cannot tell), vs",
        }[kind]
        checks.append(
            Check(
                "latency",
                kind,
                above if kind is VerdictKind.FAIL else below,
                limit,
                f"latency: {words} the allowed {pct(limit)} (p{analysis.slos.latency.percentile:g}; "
                f"counted {counted_as(latency)})",
                canary_rate=above if kind is VerdictKind.FAIL else below,
                slo=limit,
                test="threshold",
            )
        )
    return tuple(checks)
