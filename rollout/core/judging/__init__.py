"""Judges: turn one interval's metrics into a Verdict with its numbers. Pure; the engine picks the
judge the policy names (``analysis.judge``) through ``judge``.
"""

from __future__ import annotations

from rollout.core.judging.sequential import judge_sequential
from rollout.core.judging.threshold import judge_threshold
from rollout.core.states import JudgeMemory, MetricsSample, Verdict
from rollout.policy.models import Analysis, JudgeKind


def judge(
    analysis: Analysis, memory: JudgeMemory, sample: MetricsSample, canary_share: float
) -> tuple[Verdict, JudgeMemory]:
    """Judge one interval with the judge the policy asks for."""
    if analysis.judge is JudgeKind.SEQUENTIAL:
        return judge_sequential(analysis, memory, sample, canary_share)
    return judge_threshold(analysis, memory, sample, canary_share)
