"""In-memory stand-ins for the shell's fast tests: Rollout objects with resourceVersions and
conditional status writes, RolloutCommands, leadership that can be lost, telemetry and events that
record, a counter provider that turns a MemoryRouter's weights (and an A/B step's managed route)
into exact readings, and a clock."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.core.readings import Outcome, Reading, TargetCounters
from rollout.core.states import CommandKind, CommandResult
from rollout.core.verdicts import Verdict
from rollout.errors import KubeConflict, KubeNotFound, NotLeader
from rollout.kube.commands import CommandObject, command_body
from rollout.kube.rollouts import RolloutObject
from rollout.metrics.base import AnalysisRequest
from rollout.policy.models import RouterSpec
from rollout.routers.base import Router
from rollout.routers.memory import MemoryRouter

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


class FakeRollouts:
    """Rollout objects as the API server keeps them: resourceVersion, generation, conditional status."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.status_writes: list[tuple[str, dict[str, Any]]] = []
        self._rv = itertools.count(1)
        self.fail_next_write: Exception | None = None
        self.on_write: Callable[[str, dict[str, Any]], None] | None = None

    def put(self, doc: dict[str, Any]) -> str:
        raw = copy.deepcopy(doc)
        meta = raw["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        old = self.objects.get(key)
        meta["uid"] = old["metadata"]["uid"] if old else f"uid-{key}"
        meta["generation"] = (old["metadata"]["generation"] + 1) if old else 1
        meta["resourceVersion"] = str(next(self._rv))
        if old and "status" in old:
            raw["status"] = old["status"]
        self.objects[key] = raw
        return key

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def get(self, namespace: str, name: str) -> RolloutObject:
        raw = self.objects.get(f"{namespace}/{name}")
        if raw is None:
            raise KubeNotFound(f"rollouts {namespace}/{name} not found")
        return RolloutObject(copy.deepcopy(raw))

    def write_status(self, obj: RolloutObject, status: Mapping[str, Any]) -> RolloutObject:
        if self.fail_next_write is not None:
            error, self.fail_next_write = self.fail_next_write, None
            raise error
        current = self.objects.get(obj.key)
        if current is None:
            raise KubeNotFound(obj.key)
        if current["metadata"]["resourceVersion"] != obj.resource_version:
            raise KubeConflict(f"conditional patch of {obj.key} lost a race")
        current["status"] = copy.deepcopy(dict(status))
        current["metadata"]["resourceVersion"] = str(next(self._rv))
        self.status_writes.append((obj.key, copy.deepcopy(dict(status))))
        if self.on_write is not None:
            self.on_write(obj.key, current["status"])
        return RolloutObject(copy.deepcopy(current))

    def status(self, key: str) -> dict[str, Any]:
        return dict(self.objects[key].get("status") or {})


class FakeCommands:
    """RolloutCommands: created by "people", acknowledged by the daemon."""

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self._n = itertools.count(1)
        self.acks: list[tuple[str, CommandResult]] = []

    def create(
        self, namespace: str, rollout: str, kind: CommandKind, *, by: str = "alice", at: datetime = T0, **kw: Any
    ) -> str:
        body = command_body(namespace, rollout, kind, by=by, **kw)
        n = next(self._n)
        body["metadata"] |= {
            "name": f"cmd-{n}",
            "uid": f"cmd-uid-{n}",
            "creationTimestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.objects.append(body)
        return str(body["metadata"]["uid"])

    def pending(self, namespace: str, rollout: str) -> Sequence[CommandObject]:
        return [
            CommandObject(copy.deepcopy(o))
            for o in self.objects
            if o["metadata"]["namespace"] == namespace and o["spec"].get("rollout") == rollout and not o.get("status")
        ]

    def acknowledge(self, obj: CommandObject, result: object, *, by: str, now: datetime) -> None:
        assert isinstance(result, CommandResult)
        for o in self.objects:
            if o["metadata"]["name"] == obj.name:
                o["status"] = {"phase": "Accepted" if result.accepted else "Ignored", "message": result.message}
        self.acks.append((obj.name, result))


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

    def ended(self, namespace: str, name: str, phase: str) -> None:
        self.ended_runs.append((f"{namespace}/{name}", phase))

    def forget(self, namespace: str, name: str) -> None:
        self.forgotten.append(f"{namespace}/{name}")

    def api_error(self, kind: str) -> None:
        self.errors.append(kind)


@dataclass
class FakeEvents:
    recorded: list[tuple[str, str, str]] = field(default_factory=list)

    def record(
        self, namespace: str, name: str, *, uid: str | None, reason: str, message: str, warning: bool, now: datetime
    ) -> None:
        self.recorded.append((f"{namespace}/{name}", reason, message))


@dataclass
class FakeNotifications:
    sent: list[tuple[str, str]] = field(default_factory=list)

    def notify(self, key: str, action: Any, policy: Any) -> None:
        self.sent.append((key, action.event))

    def request_approval(self, key: str, action: Any, policy: Any) -> None:
        self.sent.append((key, "approval"))

    def approval_resolved(self, key: str, action: Any, policy: Any) -> None:
        self.sent.append((key, f"approval-{action.resolution.value}"))

    def update(self, snapshot: Any, policy: Any) -> None:
        self.sent.append((snapshot.rollout, f"update:{snapshot.phase}:{snapshot.canary_weight}"))


class Routes:
    """One MemoryRouter per route; ``router_for`` has the daemon's signature."""

    def __init__(self) -> None:
        self.routers: dict[tuple[str, str], MemoryRouter] = {}
        self.built: list[tuple[str, str, str, str]] = []

    def route(self, namespace: str, name: str = "gr") -> MemoryRouter:
        return self.routers.setdefault((namespace, name), MemoryRouter("v1", "v2", name=f"{namespace}/{name}"))

    def router_for(self, spec: RouterSpec, namespace: str, stable: str, canary: str) -> Router:
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
