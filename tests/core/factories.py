"""Builders shared by the core tests: policies from short dicts, commands, and a Driver that runs
decide() against an in-memory route (weights and an A/B step's managed route) and exact counters,
on a clock that follows ScheduleNext."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.core.actions import Action, ScheduleNext, SetMatch, SetWeights
from rollout.core.engine import Decision, decide
from rollout.core.matches import MatchKind, MatchRule, RouteMatch
from rollout.core.readings import Outcome, Reading, TargetCounters
from rollout.core.states import (
    STABLE_ONLY,
    Command,
    CommandKind,
    Observations,
    RolloutState,
    RouteProblem,
    Weights,
    reads_match,
)
from rollout.policy.models import Rollout

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIN_TICK = timedelta(seconds=1)
BETA = {"headers": [{"name": "X-Experiment-ID", "exact": "beta"}]}  # the seed's A/B match
BETA_MATCH = RouteMatch(headers=(MatchRule("X-Experiment-ID", MatchKind.EXACT, "beta"),))


def policy(
    steps: list[dict[str, Any]] | None = None,
    judge: str = "threshold",
    approvals: dict[str, Any] | None = None,
    deadline: str = "30m",
    router: dict[str, Any] | None = None,
    **analysis: Any,
) -> Rollout:
    spec: dict[str, Any] = {
        "router": router or {"gatewayRoute": {"name": "gr"}},
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
        "progressDeadline": deadline,
    }
    return Rollout.model_validate(
        {"apiVersion": "delivery.rollout.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"}, "spec": spec}
    )


def command(kind: CommandKind, at: datetime, n: int = 0, by: str = "alice", **extra: Any) -> Command:
    return Command(kind=kind, by=by, at=at, id=f"{kind.value}-{n}-{at.timestamp()}", **extra)


@dataclass
class Traffic:
    """Exact (expected-value) traffic: ``rps`` split by the live weights, per-arm error and slow rates."""

    rps: float = 100.0
    canary_errors: float = 0.0
    stable_errors: float = 0.001
    canary_slow: float = 0.0
    stable_slow: float = 0.0
    canary_errors_at_or_above: dict[int, float] = field(default_factory=dict)  # weight -> error rate
    matching: float = 0.05  # share of requests that match an A/B step's managed route


@dataclass
class Driver:
    """Runs decide() tick after tick like the runtime: reads the route and the counters, decides,
    applies SetWeights to the route, and sleeps until ScheduleNext (at least ``MIN_TICK``)."""

    policy: Rollout
    state: RolloutState = field(default_factory=RolloutState)
    live: Weights = STABLE_ONLY
    now: datetime = T0
    traffic: Traffic = field(default_factory=Traffic)
    metrics: Outcome | None = Outcome.OK  # None: no reading at all on a tick
    route_problem: RouteProblem | None = None  # set: the route cannot be read
    write_problem: RouteProblem | None = None  # set: every write fails with it
    match: RouteMatch | None = None  # the managed route on the route (None: there is none)
    decisions: list[Decision] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)  # when each decision was taken
    visited: list[int] = field(default_factory=list)  # canary weights the route carried, in order
    matches: list[RouteMatch | None] = field(default_factory=list)  # managed routes it carried, in order
    _counters: dict[str, TargetCounters] = field(default_factory=dict)
    _last_problem: RouteProblem | None = None
    _landed: Weights | None = None
    report_landed: bool = True  # False: the runtime lost what its writes did (a restart)
    last_observations: Observations = field(default_factory=Observations)

    def __post_init__(self) -> None:
        self._counters = {arm: TargetCounters(0.0, 0.0, T0.timestamp()) for arm in ("canary", "stable")}
        self.visited = [self.live.canary]
        self.matches = [self.match]

    def share(self) -> float:
        """The canary's share of requests: the managed route's matches first, then the weights."""
        matching = self.traffic.matching if self.match is not None else 0.0
        return matching + (1 - matching) * self.live.canary / 100

    def _advance_traffic(self) -> None:
        for arm in ("canary", "stable"):
            old = self._counters[arm]
            seconds = self.now.timestamp() - old.at
            share = self.share() if arm == "canary" else 1 - self.share()
            requests = self.traffic.rps * share * seconds
            rate = self.traffic.canary_errors if arm == "canary" else self.traffic.stable_errors
            if arm == "canary":
                for weight, bad in sorted(self.traffic.canary_errors_at_or_above.items()):
                    if self.live.canary >= weight:
                        rate = bad
            slow = self.traffic.canary_slow if arm == "canary" else self.traffic.stable_slow
            self._counters[arm] = TargetCounters(
                old.requests + requests,
                old.errors + requests * rate,
                self.now.timestamp(),
                old.slow + requests * slow,
                old.slow_above + requests * slow,
            )

    def reading(self) -> Reading | None:
        self._advance_traffic()
        if self.metrics is None:
            return None
        if self.metrics not in (Outcome.OK, Outcome.PARTIAL):
            return Reading(outcome=self.metrics, taken_at=self.now, detail=f"simulated {self.metrics.value}")
        return Reading(
            outcome=Outcome.OK,
            taken_at=self.now,
            canary={"gw": self._counters["canary"]},
            stable={"gw": self._counters["stable"]},
        )

    def tick(
        self, commands: Iterable[Command] = (), advance: timedelta | None = None, *, crash: bool = False
    ) -> Decision:
        """One tick; ``crash``: the process dies after persisting the state, before any action."""
        read_match = reads_match(self.state, any(step.match for step in self.policy.spec.steps))
        obs = Observations(
            route=None if self.route_problem else self.live,
            match=self.match if read_match and not self.route_problem else None,
            route_problem=self.route_problem,
            write_problem=self._last_problem,
            write_landed=self._landed if self.report_landed else None,
            reading=self.reading(),
            commands=tuple(commands),
        )
        self.last_observations = obs
        decision = decide(self.policy, self.state, obs, self.now)
        self.decisions.append(decision)
        self.times.append(self.now)
        self.state = decision.state
        self._last_problem, self._landed = None, None
        for action in () if crash else decision.actions:
            if isinstance(action, SetMatch):
                if self.write_problem is not None:
                    self._last_problem = self.write_problem
                elif not action.check or action.expected == self.match:
                    self.match = action.target
                    if self.matches[-1] != self.match:
                        self.matches.append(self.match)
            if isinstance(action, SetWeights):
                if self.write_problem is not None:
                    self._last_problem = self.write_problem
                elif action.expected is None or action.expected == self.live:
                    self.live = action.target
                    self._landed = action.target
                    if self.visited[-1] != self.live.canary:
                        self.visited.append(self.live.canary)
        if advance is None:
            nexts = [a.at for a in decision.actions if isinstance(a, ScheduleNext)]
            target = nexts[0] if nexts else self.now + self.policy.spec.analysis.interval
            advance = max(target - self.now, MIN_TICK)
        self.now += advance
        return decision

    def edit(self, weights: Weights) -> None:
        """Someone else changes the route (kubectl)."""
        self.live = weights
        self.visited.append(weights.canary)

    def edit_match(self, match: RouteMatch | None) -> None:
        """Someone else changes (or deletes, or creates) the managed route."""
        self.match = match
        self.matches.append(match)

    def until(self, predicate: Any, limit: int = 500) -> Decision:
        """Tick until ``predicate(driver)`` holds (or fail after ``limit`` ticks)."""
        for _ in range(limit):
            decision = self.tick()
            if predicate(self):
                return decision
        raise AssertionError(f"not reached after {limit} ticks: {self.state.phase} {self.state.message}")


def weight_actions(actions: Iterable[Action]) -> list[SetWeights]:
    return [a for a in actions if isinstance(a, SetWeights)]


def shape(decision: Decision) -> tuple[object, ...]:
    """A decision without its words: the state's texts blanked, each action without its texts."""
    state = replace(decision.state, message="", pause_detail="", end_reason="")
    words = ("message", "detail", "reason")
    actions = tuple(
        (type(a).__name__, tuple((k, v) for k, v in vars(a).items() if k not in words)) for a in decision.actions
    )
    return state, actions


def match_actions(actions: Iterable[Action]) -> list[SetMatch]:
    return [a for a in actions if isinstance(a, SetMatch)]
