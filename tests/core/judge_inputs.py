"""Builders for judge tests: policies from short dicts, intervals from count tuples, a tick driver."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.core.judging import JudgeInput, JudgeMemory, judge
from rollout.core.readings import ArmCounts, Interval, LatencyBuckets, Outcome
from rollout.core.verdicts import Check, Verdict
from rollout.policy.analysis import Analysis

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOTH_SLOS: dict[str, Any] = {"errorRate": {"max": "1%"}, "latency": {"percentile": 99, "max": "300ms"}}
ERRORS_ONLY: dict[str, Any] = {"errorRate": {"max": "1%"}}
ENVOY_300 = LatencyBuckets(300.0, 250.0, 500.0)

Counts = tuple[float, ...]  # (requests, errors[, slow[, slow_above]])


def analysis(slos: dict[str, Any] | None = None, judge: str = "sequential", **extra: Any) -> Analysis:
    return Analysis.model_validate({"judge": judge, "slos": BOTH_SLOS if slos is None else slos, **extra})


def arm(counts: Counts) -> ArmCounts:
    requests, errors, *rest = counts
    slow = rest[0] if rest else 0.0
    slow_above = rest[1] if len(rest) > 1 else slow
    return ArmCounts(float(requests), float(errors), float(slow), float(slow_above))


def interval(canary: Counts, stable: Counts | None = None, seconds: float = 30.0, at: float = 0.0) -> Interval:
    start = T0 + timedelta(seconds=at)
    return Interval(arm(canary), arm(stable or (0, 0)), start, start + timedelta(seconds=seconds))


@dataclass
class Driver:
    """Feeds one run's ticks to a judge, keeping its memory and the clock of its intervals."""

    policy: Analysis
    weight_steps: int = 4
    memory: JudgeMemory = field(default_factory=JudgeMemory)
    step: int = 0
    weight: int = 10
    clock: float = 0.0
    verdicts: list[Verdict] = field(default_factory=list)
    new_step: bool = True  # the next tick is the first of a step

    def move(self, weight: int) -> None:
        """The engine moved to the next weight step."""
        self.step += 1
        self.weight = weight
        self.new_step = True

    def tick(
        self,
        canary: Counts | None,
        stable: Counts | None = None,
        *,
        at_weight: bool = True,
        seconds: float = 30.0,
        outcome: Outcome = Outcome.OK,
        custom: Mapping[str, float] | None = None,
        reason: str = "",
    ) -> Verdict:
        iv = None if canary is None else interval(canary, stable, seconds, self.clock)
        self.clock += seconds
        inp = JudgeInput(
            outcome=outcome,
            interval=iv,
            at_weight=at_weight,
            weight=self.weight,
            step=self.step,
            weight_steps=self.weight_steps,
            new_step=self.new_step,
            reason=reason,
            custom=dict(custom or {}),
            latency=ENVOY_300,
        )
        self.new_step = False
        verdict, self.memory = judge(self.policy, self.memory, inp)
        self.verdicts.append(verdict)
        return verdict


def check(verdict: Verdict, name: str = "errorRate") -> Check:
    return next(c for c in verdict.checks if c.name == name)
