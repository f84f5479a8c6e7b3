"""``rollout simulate``: run the real engine through a whole rollout on a fake clock.

Owns the simulation loop and its scenarios (healthy, error-spike, latency-spike, no-traffic): it
wires the in-memory router, metrics and notifier to ``decide`` exactly as the daemon wires the
real adapters, so what the simulator shows is what the daemon would do. Deterministic for a seed.
It must not touch the network or the real clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from rollout.core.actions import Notify, RequestApproval, ScheduleNext, SetWeights
from rollout.core.commanding import PAUSE_STEP
from rollout.core.engine import decide
from rollout.core.states import Command, CommandKind, Observations, Phase, RolloutState, Verdict
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.memory import MemoryMetrics
from rollout.notifiers.memory import MemoryNotifier
from rollout.policy.models import Rollout
from rollout.routers.memory import MemoryRouter

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SIMULATED_OPERATOR = "simulated-operator"


class Scenario(StrEnum):
    HEALTHY = "healthy"
    ERROR_SPIKE = "error-spike"
    LATENCY_SPIKE = "latency-spike"
    NO_TRAFFIC = "no-traffic"


@dataclass(frozen=True)
class Event:
    """One tick of the simulation as the timeline and the JSON output show it."""

    seconds: float
    step: int  # 1-based; 0 before the run starts
    phase: str
    canary: int
    stable: int
    decision: str
    verdict: Verdict | None
    actions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.seconds,
            "step": self.step,
            "phase": self.phase,
            "canaryWeight": self.canary,
            "stableWeight": self.stable,
            "decision": self.decision,
            "verdict": self.verdict.to_dict() if self.verdict else None,
            "actions": list(self.actions),
        }


@dataclass
class Simulation:
    policy: Rollout
    scenario: Scenario
    state: RolloutState
    events: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spike_at: float | None = None  # seconds at which the fault started
    ended_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        verdict = self.state.verdict
        return {
            "rollout": self.policy.key,
            "scenario": self.scenario.value,
            "phase": self.state.phase.value,
            "canaryWeight": self.state.weights.canary,
            "stableWeight": self.state.weights.stable,
            "step": self.state.step + 1,
            "message": self.state.message,
            "endReason": self.state.end_reason,
            "durationSeconds": self.ended_at,
            "faultStartedAt": self.spike_at,
            "lastVerdict": verdict.to_dict() if verdict else None,
            "notifications": self.notes,
            "events": [e.to_dict() for e in self.events],
        }


def simulate(
    policy: Rollout,
    scenario: Scenario,
    *,
    at_step: int = 1,
    rps: float = 50.0,
    seed: int = 7,
    approve_after: timedelta = timedelta(minutes=2),
    max_duration: timedelta = timedelta(hours=12),
) -> Simulation:
    """Run one rollout of ``policy`` to its end (or to a pause nobody would lift) under ``scenario``.

    ``at_step`` (1-based) is the step at which the fault of ``error-spike``/``latency-spike`` starts.
    A simulated operator approves approval gates and resumes indefinite pause steps after
    ``approve_after``; other pauses (drift, deadline) end the simulation, as nobody resumes them.
    """
    spec = policy.spec
    router = MemoryRouter(spec.stable, spec.canary, name=f"{spec.router.kind}/{spec.router.ref.name}")
    live_share = _share_of(router, spec.stable, spec.canary, scenario)
    metrics = MemoryMetrics(rps=rps, share=live_share, seed=seed)
    for metric in spec.analysis.metrics:  # healthy custom values: inside their bounds
        low, high = metric.min, metric.max
        metrics.custom_values[metric.name] = (
            (low + high) / 2
            if low is not None and high is not None
            else (high * 0.5 if high is not None else (low or 0.0) * 2 + 1)
        )
    notifier = MemoryNotifier()
    sim = Simulation(policy=policy, scenario=scenario, state=RolloutState())
    now = EPOCH
    waiting_since: datetime | None = None
    commands: tuple[Command, ...] = ()
    for _ in range(100_000):
        state = sim.state
        faulty = scenario in (Scenario.ERROR_SPIKE, Scenario.LATENCY_SPIKE)
        if faulty and sim.spike_at is None and state.phase.active and state.step + 1 >= at_step:
            _inject(metrics, spec.canary, scenario)
            sim.spike_at = (now - EPOCH).total_seconds()
        live = router.get_weights()
        request = AnalysisRequest.for_policy(policy)
        sample = metrics.collect([request], now)[policy.key]
        decision = decide(policy, state, Observations(weights=live, metrics=sample, commands=commands), now)
        commands = ()
        done: list[str] = []
        next_at = now + spec.analysis.interval
        for action in decision.actions:
            if isinstance(action, SetWeights):
                router.set_weights(action.target, expected=action.expected)
                done.append(f"set {action.target} ({action.purpose.value})")
            elif isinstance(action, Notify):
                notifier.notify(policy.key, action)
                sim.notes.append(f"[{action.level.value}] {action.message}")
            elif isinstance(action, RequestApproval):
                notifier.request_approval(policy.key, action)
                done.append("approval requested")
            elif isinstance(action, ScheduleNext):
                next_at = max(now + timedelta(seconds=1), action.at)
        sim.state = decision.state
        sim.events.append(
            Event(
                seconds=(now - EPOCH).total_seconds(),
                step=decision.state.step + 1 if decision.state.run_started_at else 0,
                phase=decision.state.phase.value,
                canary=decision.state.weights.canary,
                stable=decision.state.weights.stable,
                decision=decision.reason,
                verdict=decision.state.verdict if decision.state.last_judged_at == now else None,
                actions=tuple(done),
            )
        )
        sim.ended_at = (now - EPOCH).total_seconds()
        if decision.state.phase.final or now - EPOCH > max_duration:
            break
        phase, reason = decision.state.phase, decision.state.pause_reason
        if phase is Phase.PAUSED and reason != PAUSE_STEP:
            break  # drift or deadline: a person would have to look; the simulation stops here
        people_needed = phase is Phase.AWAITING_APPROVAL or (
            phase is Phase.PAUSED and not _timed(policy, decision.state.step)
        )
        if people_needed:
            waiting_since = waiting_since or now
            if now - waiting_since >= approve_after:
                kind = CommandKind.APPROVE if phase is Phase.AWAITING_APPROVAL else CommandKind.RESUME
                commands = (Command(kind=kind, by=SIMULATED_OPERATOR, at=now, id=f"sim-{kind.value}-{now:%s}"),)
                waiting_since = None
                next_at = now + timedelta(seconds=1)
            else:
                next_at = min(next_at, waiting_since + approve_after)
        now = next_at
    return sim


def _timed(policy: Rollout, step: int) -> bool:
    if step >= len(policy.spec.steps):
        return False
    pause = policy.spec.steps[step].pause
    return pause is not None and pause.duration is not None


def _share_of(router: MemoryRouter, stable: str, canary: str, scenario: Scenario) -> Callable[[str], float]:
    def share(backend: str) -> float:
        weights = router.get_weights()
        if backend == canary:
            return 0.0 if scenario is Scenario.NO_TRAFFIC else weights.canary / 100.0
        if backend == stable:
            return weights.stable / 100.0
        return 0.0

    return share


def _inject(metrics: MemoryMetrics, canary: str, scenario: Scenario) -> None:
    profile = metrics.profile(canary)
    if scenario is Scenario.ERROR_SPIKE:
        profile.error_rate = 0.12
    else:
        profile.slow_share = 0.25
