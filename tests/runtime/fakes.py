"""In-memory stand-ins for the shell's fast tests: Rollout objects with resourceVersions and
conditional status writes, RolloutCommands, leadership that can be lost, telemetry and events that
record, a counter provider that turns a MemoryRouter's weights (and an A/B step's managed route)
into exact readings, and a clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.core.readings import Outcome, Reading, TargetCounters
from rollout.core.states import CommandKind
from rollout.core.verdicts import Verdict
from rollout.errors import NotLeader
from rollout.kube.rollouts import RolloutObject
from rollout.metrics.base import AnalysisRequest
from rollout.policy.models import RouterSpec
from rollout.routers.base import Router
from rollout.routers.memory import MemoryRouter
from rollout.runtime.inmemory import InMemoryCommands, InMemoryRollouts

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def rollout_doc(
    name: str = "shop",
    namespace: str = "team",
    steps: list[dict[str, Any]] | None = None,
    route_namespace: str | None = None,
    **analysis: Any,
) -> dict[str, Any]:
    router: dict[str, Any] = {"name": "gr"}
    if route_namespace:
        router["namespace"] = route_namespace
    return {
        "apiVersion": "delivery.rollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "router": {"gatewayRoute": router},
            "stable": "v1",
            "canary": "v2",
            "steps": steps or [{"setWeight": 20}, {"setWeight": 50}, {"setWeight": 100}],  # A/B: {"match": ...}
            "analysis": {
                "interval": "10s",
                "judge": "threshold",
                "slos": {"errorRate": {"max": "1%"}},
                "minRequests": 50,
                **analysis,
            },
        },
    }


class FakeRollouts(InMemoryRollouts):
    """In-memory Rollouts whose next status write can fail, or be watched."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next_write: Exception | None = None
        self.on_write: Callable[[str, dict[str, Any]], None] | None = None

    def write_status(self, obj: RolloutObject, status: Mapping[str, Any]) -> RolloutObject:
        if self.fail_next_write is not None:
            error, self.fail_next_write = self.fail_next_write, None
            raise error
        written = super().write_status(obj, status)
        if self.on_write is not None:
            self.on_write(obj.key, dict(status))
        return written


class FakeCommands(InMemoryCommands):
    """Commands created by "people" (alice by default) at the fake epoch."""

    def create(
        self, namespace: str, rollout: str, kind: CommandKind, *, by: str = "alice", at: datetime = T0, **kw: Any
    ) -> str:
        return super().create(namespace, rollout, kind, by=by, at=at, **kw)


class FakeLeadership:
    def __init__(self) -> None:
        self.leader = True
        self.guards = 0

    def owns(self, key: str) -> bool:
        return True

    def guard(self, key: str) -> None:
        self.guards += 1
        if not self.leader:
            raise NotLeader("lost the lease")


@dataclass
class FakeTelemetry:
    observed: list[tuple[str, str, str, int]] = field(default_factory=list)
    ended_runs: list[tuple[str, str]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def observe(
        self,
        namespace: str,
        name: str,
        *,
        phase: str,
        step: int,
        steps: int,
        canary_weight: int,
        desired_canary_weight: int,
        verdict: Verdict | None,
    ) -> None:
        self.observed.append((namespace, name, phase, canary_weight))

    def promoted(self, namespace: str, name: str) -> None:
        self.ended_runs.append((f"{namespace}/{name}", "Promoted"))

    def rolled_back(self, namespace: str, name: str) -> None:
        self.ended_runs.append((f"{namespace}/{name}", "RolledBack"))

    def forget(self, namespace: str, name: str) -> None:
        self.forgotten.append(f"{namespace}/{name}")

    def api_error(self, kind: str) -> None:
        self.errors.append(kind)


@dataclass
class FakeEvents:
    recorded: list[tuple[str, str, str]] = field(default_factory=list)
    series: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # event name -> (count, last)

    def record(
        self, namespace: str, name: str, *, uid: str | None, reason: str, message: str, warning: bool, now: datetime
    ) -> str:
        self.recorded.append((f"{namespace}/{name}", reason, message))
        return f"{name}.{len(self.recorded)}"

    def repeat(self, namespace: str, event: str, *, regarding: str, count: int, now: datetime) -> None:
        self.series[event] = (count, now)


@dataclass
class FakeNotifications:
    sent: list[tuple[str, str]] = field(default_factory=list)

    def notify(self, snapshot: Any, note: Any) -> None:
        self.sent.append((snapshot.rollout, note.event))

    def request_approval(self, snapshot: Any, request: Any) -> None:
        self.sent.append((snapshot.rollout, "approval"))

    def approval_resolved(self, snapshot: Any, resolved: Any) -> None:
        self.sent.append((snapshot.rollout, f"approval-{resolved.resolution.value}"))

    def update(self, snapshot: Any) -> None:
        self.sent.append((snapshot.rollout, f"update:{snapshot.phase}:{snapshot.canary_weight}"))


class Routes:
    """One MemoryRouter per route; ``router_for`` has the daemon's signature."""

    def __init__(self) -> None:
        self.routers: dict[tuple[str, str], MemoryRouter] = {}
        self.built: list[tuple[str, str, str, str]] = []

    def route(self, namespace: str, name: str = "gr") -> MemoryRouter:
        return self.routers.setdefault((namespace, name), MemoryRouter("v1", "v2", name=f"{namespace}/{name}"))

    def router_for(self, spec: RouterSpec, namespace: str, stable: str, canary: str, key: str) -> Router:
        self.built.append((namespace, spec.ref.name, stable, canary))
        return self.route(namespace, spec.ref.name)


class CounterProvider:
    """Exact counters per backend, advanced at each collect by the routes' live weights."""

    def __init__(self, routes: Routes, clock: Clock, *, rps: float = 50.0, matching: float = 0.2) -> None:
        self.routes, self.clock, self.rps = routes, clock, rps
        self.matching = matching  # share of requests matching an A/B step's managed route, when there is one
        self.error_rate: dict[str, float] = {"v1": 0.0, "v2": 0.0}
        self._counters: dict[tuple[str, str], TargetCounters] = {}
        self.calls: list[int] = []

    def collect(self, batch: Sequence[AnalysisRequest], at: datetime) -> dict[str, Reading]:
        self.calls.append(len(batch))
        out = {}
        for request in batch:
            router = self.routes.route(request.namespace)
            weights, match = router.peek()
            assert weights is not None
            matching = self.matching if match is not None else 0.0
            canary = 100 * matching + (1 - matching) * weights.canary
            arms = {}
            for arm, backend, share in (
                ("canary", request.canary, canary),
                ("stable", request.stable, 100 - canary),
            ):
                old = self._counters.get((request.key, arm), TargetCounters(0.0, 0.0, T0.timestamp()))
                dt = max(0.0, at.timestamp() - old.at)
                n = self.rps * share / 100 * dt
                new = TargetCounters(
                    old.requests + n, old.errors + n * self.error_rate.get(backend, 0.0), at.timestamp()
                )
                self._counters[(request.key, arm)] = new
                arms[arm] = {"gw": new}
            out[request.key] = Reading(Outcome.OK, at, canary=arms["canary"], stable=arms["stable"])
        return out
