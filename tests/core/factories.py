"""Builders shared by the core tests: policies from short dicts, samples, commands, a tick driver."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.core.actions import Action, SetWeights
from rollout.core.engine import Decision, decide
from rollout.core.states import (
    ArmCounts,
    Command,
    CommandKind,
    MetricsSample,
    Observations,
    Outcome,
    RolloutState,
    Weights,
)
from rollout.policy.models import Rollout

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def policy(
    steps: list[dict[str, Any]] | None = None,
    judge: str = "threshold",
    approvals: dict[str, Any] | None = None,
    **analysis: Any,
) -> Rollout:
    spec: dict[str, Any] = {
        "router": {"gatewayRoute": {"name": "gr"}},
        "stable": "v1",
        "canary": "v2",
        "steps": steps or [{"setWeight": 10}, {"setWeight": 50}, {"setWeight": 100}],
        "analysis": {
            "interval": "30s",
            "judge": judge,
            "slos": {"errorRate": {"max": "1%"}, "latency": {"percentile": 99, "max": "300ms"}},
            "minRequests": 100,
            "failureLimit": 2,
            **analysis,
        },
        "approvals": approvals or {},
    }
    return Rollout.model_validate(
        {"apiVersion": "delivery.rollout.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"}, "spec": spec}
    )


def healthy(requests: float = 1000) -> MetricsSample:
    return MetricsSample(
        outcome=Outcome.OK,
        canary=ArmCounts(requests, 0, 0),
        stable=ArmCounts(requests * 9, requests * 9 * 0.001, 0),
        window_seconds=30,
    )


def failing(requests: float = 1000, error_ratio: float = 0.2) -> MetricsSample:
    return MetricsSample(
        outcome=Outcome.OK,
        canary=ArmCounts(requests, requests * error_ratio, 0),
        stable=ArmCounts(requests * 9, requests * 9 * 0.001, 0),
        window_seconds=30,
    )


def missing(outcome: Outcome = Outcome.NO_DATA) -> MetricsSample:
    return MetricsSample(outcome=outcome, detail=f"simulated {outcome.value}")


def command(kind: CommandKind, at: datetime, n: int = 0, by: str = "alice") -> Command:
    return Command(kind=kind, by=by, at=at, id=f"{kind.value}-{n}-{at.timestamp()}")


@dataclass
class Driver:
    """Runs decide() tick after tick, applying SetWeights to an in-memory route like the runtime does."""

    policy: Rollout
    state: RolloutState = field(default_factory=RolloutState)
    live: Weights = Weights(canary=0, stable=100)
    now: datetime = T0
    decisions: list[Decision] = field(default_factory=list)

    def tick(
        self,
        sample: MetricsSample | None = None,
        commands: Iterable[Command] = (),
        advance: timedelta = timedelta(seconds=30),
        apply: bool = True,
    ) -> Decision:
        obs = Observations(weights=self.live, metrics=sample, commands=tuple(commands))
        decision = decide(self.policy, self.state, obs, self.now)
        self.decisions.append(decision)
        self.state = decision.state
        if apply:
            for action in decision.actions:
                if isinstance(action, SetWeights):
                    self.live = action.target
        self.now += advance
        return decision

    def run(self, sample: MetricsSample, ticks: int) -> Decision:
        decision = self.tick(sample)
        for _ in range(ticks - 1):
            decision = self.tick(sample)
        return decision


def weight_actions(actions: Iterable[Action]) -> list[SetWeights]:
    return [a for a in actions if isinstance(a, SetWeights)]
