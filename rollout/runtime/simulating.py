"""``rollout simulate``: the daemon's own shell through a whole rollout, on a fake clock.

Owns the simulation loop and its scenarios (healthy, error-spike, latency-spike, no-traffic). It
runs the very code the daemon runs — ``Reconciler`` (observe, decide, persist, act), the scheduler's
due-time rule (``RolloutScheduler``: ScheduleNext honoured, timers on time), aligned metrics
batches (``MetricsBatcher``) — over in-memory adapters: a Rollout store with resourceVersions,
the ``MemoryRouter``, the ``MemoryMetrics`` provider (cumulative counters scraped like Envoy's) and
the ``MemoryNotifier``. So the timeline it prints is what the daemon would do with the same
traffic, except for the time the API server, Prometheus and Slack take. Deterministic for a seed;
it never touches the network or the real clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval, SetWeights
from rollout.core.persisting import load
from rollout.core.states import CommandKind, PauseReason, Phase, RolloutState
from rollout.core.verdicts import Verdict
from rollout.metrics.memory import MemoryMetrics
from rollout.notifiers.base import RolloutSnapshot
from rollout.notifiers.memory import MemoryNotifier
from rollout.policy.models import Rollout, RouterSpec
from rollout.routers.base import Router
from rollout.routers.memory import MemoryRouter
from rollout.runtime.acting import Actor
from rollout.runtime.batching import MetricsBatcher
from rollout.runtime.inmemory import AlwaysLeader, InMemoryCommands, InMemoryRollouts, NullTelemetry
from rollout.runtime.reconciling import Capacity, Outcome, Reconciler
from rollout.runtime.scheduling import RolloutScheduler

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SIMULATED_OPERATOR = "simulated-operator"


class Scenario(StrEnum):
    HEALTHY = "healthy"
    ERROR_SPIKE = "error-spike"
    LATENCY_SPIKE = "latency-spike"
    NO_TRAFFIC = "no-traffic"


@dataclass(frozen=True)
class Event:
    """One reconcile of the simulation, as the timeline and the JSON output show it."""

    seconds: float
    step: int  # 1-based; 0 before the run starts
    phase: str
    canary: int  # what the route carries
    stable: int
    decision: str
    verdict: Verdict | None  # the verdict given on this reconcile, if any
    actions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.seconds,
            "step": self.step,
            "phase": self.phase,
            "canaryWeight": self.canary,
            "stableWeight": self.stable,
            "decision": self.decision,
            "verdict": _verdict_dict(self.verdict),
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
        observed = self.state.observed
        return {
            "rollout": self.policy.key,
            "scenario": self.scenario.value,
            "phase": self.state.phase.value,
            "canaryWeight": observed.canary if observed else 0,
            "stableWeight": observed.stable if observed else 100,
            "step": self.state.number,
            "message": self.state.message,
            "endReason": self.state.end_reason,
            "durationSeconds": self.ended_at,
            "faultStartedAt": self.spike_at,
            "lastVerdict": _verdict_dict(self.state.verdict),
            "notifications": self.notes,
            "events": [e.to_dict() for e in self.events],
        }


_VERDICT: TypeAdapter[Verdict] = TypeAdapter(Verdict)


def _verdict_dict(verdict: Verdict | None) -> dict[str, Any] | None:
    """A verdict as status stores it (camelCase, finite numbers)."""
    if verdict is None:
        return None
    data: dict[str, Any] = _VERDICT.dump_python(verdict, mode="json", by_alias=True)
    return data


class _Clock:
    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()


class _Direct:
    """Notifications straight to the in-memory notifier (the daemon queues them; here time stands still)."""

    def __init__(self, notifier: MemoryNotifier, notes: list[str]) -> None:
        self.notifier, self.notes = notifier, notes

    def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None:
        self.notifier.notify(snapshot, note)
        self.notes.append(f"[{note.level.value}] {note.message}")

    def request_approval(self, snapshot: RolloutSnapshot, request: RequestApproval) -> None:
        self.notifier.request_approval(snapshot, request)

    def approval_resolved(self, snapshot: RolloutSnapshot, resolved: ApprovalResolved) -> None:
        self.notifier.approval_resolved(snapshot, resolved)

    def update(self, snapshot: RolloutSnapshot) -> None:
        self.notifier.update(snapshot)


def simulate(
    policy: Rollout,
    scenario: Scenario,
    *,
    at_step: int = 1,
    rps: float = 500.0,
    seed: int = 7,
    approve_after: timedelta = timedelta(minutes=2),
    max_duration: timedelta = timedelta(hours=12),
    scrape_seconds: float | None = None,
) -> Simulation:
    """Run one rollout of ``policy`` to its end (or to a pause nobody would lift) under ``scenario``.

    ``at_step`` (1-based) is the step at which the fault of ``error-spike``/``latency-spike`` starts.
    A simulated operator approves approval gates and resumes indefinite pause steps after
    ``approve_after``; other pauses (drift, deadline, route errors) end the simulation, as nobody
    resumes them. Prometheus scrapes every ``scrape_seconds`` (default: 15 s, or the analysis
    interval if shorter). While an A/B step's managed route is in place, the share of requests that
    match is the policy's ``expectedShare`` (5% when it gives none).
    """
    spec = policy.spec
    interval = spec.analysis.interval.total_seconds()
    clock = _Clock()
    router = MemoryRouter(spec.stable, spec.canary, name=f"{spec.router.kind}/{spec.router.ref.name}")
    metrics = MemoryMetrics(
        rps=rps,
        share=_share_of(router, spec.stable, spec.canary, scenario, _matching(policy)),
        seed=seed,
        scrape_seconds=scrape_seconds or min(15.0, interval),
    )
    for metric in spec.analysis.metrics:  # healthy custom values: inside their bounds
        low, high = metric.min, metric.max
        metrics.custom_values[metric.name] = (
            (low + high) / 2
            if low is not None and high is not None
            else (high * 0.5 if high is not None else (low or 0.0) * 2 + 1)
        )
    sim = Simulation(policy=policy, scenario=scenario, state=RolloutState())
    rollouts, commands = InMemoryRollouts(), InMemoryCommands()
    key = rollouts.put(policy.model_dump(mode="json", by_alias=True, exclude_none=True))
    namespace, _, name = key.partition("/")
    batcher = MetricsBatcher(metrics, delay_seconds=0.0)

    def route(spec_: RouterSpec, ns: str, stable: str, canary: str, key_: str) -> Router:
        del spec_, ns, stable, canary, key_
        return router

    reconciler = Reconciler(
        rollouts=rollouts,
        commands=commands,
        router_for=route,
        readings=batcher,
        actor=Actor(
            acknowledger=commands,
            notifications=_Direct(MemoryNotifier(), sim.notes),
            events=None,
            guard=lambda _: None,
            telemetry=NullTelemetry(),
            identity=SIMULATED_OPERATOR,
        ),
        leadership=AlwaysLeader(),
        capacity=Capacity(1),
        clock=clock,
        identity="simulator",
        commands_verified=lambda: True,
    )

    def recorded(ns: str, nm: str) -> Outcome:
        before = sim.state
        outcome = reconciler.reconcile(ns, nm)
        decision = outcome.decision
        if decision is not None:
            state = decision.state
            judged = state.verdict if state.judged_at != before.judged_at else None
            sim.state = state
            sim.events.append(
                Event(
                    seconds=(clock.now - EPOCH).total_seconds(),
                    step=min(state.number, len(spec.steps)) if state.run_started_at else 0,
                    phase=state.phase.value,
                    canary=state.observed.canary if state.observed else 0,
                    stable=state.observed.stable if state.observed else 100,
                    decision=decision.reason,
                    verdict=judged,
                    actions=tuple(_describe(a) for a in decision.actions if _describe(a)),
                )
            )
        return outcome

    scheduler = RolloutScheduler(recorded, clock=clock.seconds)
    next_slot = math.ceil(EPOCH.timestamp() / interval) * interval
    waiting_since: datetime | None = None
    scheduler.wake(key)
    end = EPOCH + max_duration
    while clock.now < end:
        due = scheduler.due_in(key)
        candidates = [next_slot]
        if due is not None:
            candidates.append(clock.seconds() + max(due, 0.0))
        if waiting_since is not None:
            candidates.append((waiting_since + approve_after).timestamp())
        clock.now = datetime.fromtimestamp(math.ceil(min(candidates) * 1e6) / 1e6, UTC)
        if clock.seconds() >= next_slot:
            if batcher.collect(interval, clock.now):
                scheduler.wake(key)
            next_slot += interval
        _inject(sim, metrics, canary=spec.canary, scenario=scenario, at_step=at_step, now=clock.now)
        if waiting_since is not None and clock.now >= waiting_since + approve_after:
            kind = CommandKind.APPROVE if sim.state.phase is Phase.AWAITING_APPROVAL else CommandKind.RESUME
            commands.create(namespace, name, kind, by=SIMULATED_OPERATOR, at=clock.now)
            waiting_since = None
            scheduler.wake(key)
        scheduler.run_due()
        sim.state = load(rollouts.status(key).get("state") or {}) if rollouts.status(key) else sim.state
        sim.ended_at = (clock.now - EPOCH).total_seconds()
        phase, reason = sim.state.phase, sim.state.pause_reason
        if phase.final:
            break
        if phase is Phase.PAUSED and reason not in (PauseReason.STEP, None):
            break  # drift, deadline, route error: a person would have to look
        people = phase is Phase.AWAITING_APPROVAL or (
            phase is Phase.PAUSED and reason is PauseReason.STEP and not _timed(policy, sim.state.step)
        )
        if people and waiting_since is None:
            waiting_since = clock.now
    return sim


def _describe(action: object) -> str:
    if isinstance(action, SetWeights):
        return f"set {action.target} ({action.purpose.value})"
    if isinstance(action, RequestApproval):
        return "approval requested"
    if isinstance(action, ApprovalResolved):
        return f"approval {action.resolution.value}"
    return ""


def _timed(policy: Rollout, step: int) -> bool:
    if step >= len(policy.spec.steps):
        return False
    pause = policy.spec.steps[step].pause
    return pause is not None and pause.duration is not None


def _matching(policy: Rollout) -> float:
    """The share of requests an A/B step's match sends to the canary in a simulation: the policy's
    ``expectedShare`` (the largest, when several steps give one), else 5%."""
    shares = [s.match.expected_share for s in policy.spec.steps if s.match is not None and s.match.expected_share]
    return max(shares) / 100.0 if shares else 0.05


def _share_of(
    router: MemoryRouter, stable: str, canary: str, scenario: Scenario, matching: float
) -> Callable[[str], float]:
    def share(backend: str) -> float:
        weights, match = router.peek()
        assert weights is not None
        matched = matching if match is not None else 0.0  # an A/B step's managed route takes these first
        to_canary = matched + (1 - matched) * weights.canary / 100.0
        if backend == canary:
            return 0.0 if scenario is Scenario.NO_TRAFFIC else to_canary
        if backend == stable:
            return 1.0 - to_canary
        return 0.0

    return share


def _inject(
    sim: Simulation, metrics: MemoryMetrics, *, canary: str, scenario: Scenario, at_step: int, now: datetime
) -> None:
    faulty = scenario in (Scenario.ERROR_SPIKE, Scenario.LATENCY_SPIKE)
    if not faulty or sim.spike_at is not None or not sim.state.phase.active or sim.state.number < at_step:
        return
    profile = metrics.profile(canary)
    if scenario is Scenario.ERROR_SPIKE:
        profile.error_rate = 0.12
    else:
        profile.slow_share = 0.25
    sim.spike_at = (now - EPOCH).total_seconds()
