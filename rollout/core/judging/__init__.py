"""Judges: turn the evidence of a tick into a Verdict with its numbers (see ``base.JudgeInput``).

This is the engine's provisional judge while the sequential judge is rewritten: it holds the
current step's at-weight counts against the SLOs (threshold style) for both ``judge`` kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from rollout.core.judging.base import JudgeInput
from rollout.core.readings import NOTHING, ArmCounts, Outcome
from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.policy.models import Analysis, NoDataPolicy

_CAMEL: ConfigDict = ConfigDict(alias_generator=to_camel, populate_by_name=True)


@dataclass(frozen=True)
class JudgeMemory:
    """What the judge carries between ticks: the current step's at-weight counts and failed checks."""

    __pydantic_config__: ClassVar[ConfigDict] = _CAMEL
    step: int = -1
    canary: ArmCounts = NOTHING
    stable: ArmCounts = NOTHING
    failures: int = 0


def judge(analysis: Analysis, memory: JudgeMemory, inp: JudgeInput) -> tuple[Verdict, JudgeMemory]:
    if inp.new_step or memory.step != inp.step:
        memory = replace(memory, step=inp.step, canary=NOTHING, stable=NOTHING)
    if inp.interval is None:
        return _no_data(analysis, memory, inp.reason or inp.outcome.value)
    if inp.at_weight:
        memory = replace(memory, canary=memory.canary + inp.interval.canary, stable=memory.stable + inp.interval.stable)
    canary = memory.canary
    if canary.requests <= 0 and inp.at_weight and inp.outcome is Outcome.OK:
        return _no_data(analysis, memory, "the canary served no requests")
    if canary.requests < analysis.min_requests:
        summary = f"hold: {canary.requests:.0f} of {analysis.min_requests} canary requests at this step"
        return Verdict(VerdictKind.HOLD, (), False, summary, canary=canary, stable=memory.stable), memory
    checks = []
    if analysis.slos.error_rate is not None:
        rate, limit = canary.errors / canary.requests, analysis.slos.error_rate.max
        checks.append(Check("errorRate", VerdictKind.FAIL if rate > limit else VerdictKind.PASS, rate, limit))
    if analysis.slos.latency is not None:
        rate, limit = canary.slow / canary.requests, analysis.slos.latency.max_slow_share
        checks.append(Check("latency", VerdictKind.FAIL if rate > limit else VerdictKind.PASS, rate, limit))
    failed = [c.name for c in checks if c.verdict is VerdictKind.FAIL]
    if failed:
        memory = replace(memory, failures=memory.failures + 1)
        rollback = memory.failures >= analysis.failure_limit
        summary = f"fail: {', '.join(failed)} over the limit ({memory.failures}/{analysis.failure_limit})"
        verdict = Verdict(VerdictKind.FAIL, tuple(checks), True, summary, rollback, canary, memory.stable)
        return verdict, memory
    summary = "pass: the canary is within bounds"
    return Verdict(VerdictKind.PASS, tuple(checks), True, summary, False, canary, memory.stable), memory


def _no_data(analysis: Analysis, memory: JudgeMemory, why: str) -> tuple[Verdict, JudgeMemory]:
    if analysis.no_data is NoDataPolicy.PASS:
        return Verdict(VerdictKind.PASS, (), False, f"pass (noData: pass): {why}"), memory
    if analysis.no_data is NoDataPolicy.FAIL:
        memory = replace(memory, failures=memory.failures + 1)
        rollback = memory.failures >= analysis.failure_limit
        summary = f"fail (noData: fail): {why} ({memory.failures}/{analysis.failure_limit})"
        return Verdict(VerdictKind.FAIL, (), False, summary, rollback), memory
    return Verdict(VerdictKind.HOLD, (), False, f"hold: {why}"), memory


__all__ = ["JudgeInput", "JudgeMemory", "judge"]
