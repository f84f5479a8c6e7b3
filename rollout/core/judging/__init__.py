"""Judges: turn one interval's metrics into a Verdict with its numbers. Pure; the engine picks the
judge the policy names (``analysis.judge``) through ``judge``.

The sequential judge accumulates evidence interval after interval, so it must see each request
once. When ``analysis.window`` is longer than ``analysis.interval`` consecutive windows overlap;
``new_part`` keeps the share ``interval / window`` of each window's counts, the expected number
of requests that arrived since the previous judgement (without it, a window three intervals long
would count every request three times and inflate the evidence threefold).
"""

from __future__ import annotations

from dataclasses import replace

from rollout.core.judging.sequential import judge_sequential
from rollout.core.judging.threshold import judge_threshold
from rollout.core.states import ArmCounts, JudgeMemory, MetricsSample, Verdict
from rollout.policy.models import Analysis, JudgeKind


def judge(
    analysis: Analysis, memory: JudgeMemory, sample: MetricsSample, canary_share: float
) -> tuple[Verdict, JudgeMemory]:
    """Judge one interval with the judge the policy asks for."""
    if analysis.judge is JudgeKind.SEQUENTIAL:
        return judge_sequential(analysis, memory, new_part(analysis, sample), canary_share)
    return judge_threshold(analysis, memory, sample, canary_share)


def new_part(analysis: Analysis, sample: MetricsSample) -> MetricsSample:
    """The counts of ``sample`` that are new since the previous interval (all of them when the
    window is not longer than the interval)."""
    share = analysis.interval / analysis.effective_window
    if share >= 1:
        return sample

    def scaled(arm: ArmCounts | None) -> ArmCounts | None:
        return None if arm is None else ArmCounts(arm.requests * share, arm.errors * share, arm.slow * share)

    return replace(sample, canary=scaled(sample.canary), stable=scaled(sample.stable))
