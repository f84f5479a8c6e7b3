"""Judges: turn each tick's exact counts (and custom metric values) into a Verdict with its numbers.

``judge`` dispatches on ``analysis.judge``: ``sequential`` (default; always-valid tests, canary vs
stable, ``sequential.py``) or ``threshold`` (fixed limits, ``threshold.py``). Both take the same
``JudgeInput`` (``base.py``), keep their state in the same ``JudgeMemory`` (``memory.py``), judge
custom metrics by the same rule and own failure counting (``rules.py``). Pure: no I/O, no clock.
"""

from __future__ import annotations

from rollout.core.judging.base import JudgeInput
from rollout.core.judging.memory import JudgeMemory, SLOMemory
from rollout.core.judging.sequential import judge_sequential
from rollout.core.judging.threshold import judge_threshold
from rollout.core.verdicts import Verdict
from rollout.policy.analysis import Analysis, JudgeKind


def judge(analysis: Analysis, memory: JudgeMemory, inp: JudgeInput) -> tuple[Verdict, JudgeMemory]:
    """Judge one tick with the judge the policy names; returns the verdict and the new memory."""
    if analysis.judge is JudgeKind.SEQUENTIAL:
        return judge_sequential(analysis, memory, inp)
    return judge_threshold(analysis, memory, inp)


__all__ = ["JudgeInput", "JudgeMemory", "SLOMemory", "judge"]
