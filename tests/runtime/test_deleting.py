"""Deleting active Rollouts never leaks a concurrency slot, a metrics registration or a series,
whichever of the informer's delete event and the reconcile sees the deletion first: the deletion
(the cache dropping the object, then the event handler's ``forget``, as the daemon wires them) is
played at every point of a reconcile of that rollout (hypothesis picks the points), and a
rollout that stops being this replica's (its shard handed over) releases the same things."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.core.matches import RouteMatch
from rollout.core.states import Phase, Weights
from rollout.kube.rollouts import RolloutObject
from rollout.policy.models import RouterSpec
from rollout.routers.base import RouteOwner, Router
from rollout.runtime.scheduling import RolloutScheduler
from rollout.runtime.telemetry import Telemetry
from tests.runtime.fakes import FakeRollouts, rollout_doc
from tests.runtime.test_reconciling import Shell

POINTS = ("before", "after-get", "route-read", "status-write", "route-write", "after")
"""Where, in one reconcile of the rollout, the deletion can land (in this order)."""
LIMIT = 3  # max_concurrent_rollouts
STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}]  # then Paused (active): quiet ticks


@dataclass
class Deletions:
    """When each doomed rollout leaves the cache and when the delete handler runs (``forget``)."""

    plan: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (removed at, forgotten at)
    on_remove: Callable[[str], None] = lambda key: None
    on_forget: Callable[[str], None] = lambda key: None
    done: dict[str, set[str]] = field(default_factory=dict)

    def at(self, key: str, point: str) -> None:
        """The reconcile of ``key`` reached ``point``: play what is planned up to there."""
        if key not in self.plan:
            return
        reached = POINTS.index(point)
        removed, forgotten = self.plan[key]
        done = self.done.setdefault(key, set())
        if removed <= reached and "removed" not in done:
            done.add("removed")
            self.on_remove(key)
        if forgotten <= reached and "forgotten" not in done:
            done.add("forgotten")
            self.on_forget(key)


class HookedRollouts(FakeRollouts):
    def __init__(self, deletions: Deletions) -> None:
        super().__init__()
        self.deletions = deletions

    def get(self, namespace: str, name: str) -> RolloutObject:
        obj = super().get(namespace, name)
        self.deletions.at(obj.key, "after-get")
        return obj

    def write_status(self, obj: RolloutObject, status: Any) -> RolloutObject:
        self.deletions.at(obj.key, "status-write")
        return super().write_status(obj, status)


@dataclass
class HookedRouter:
    inner: Router
    key: str
    deletions: Deletions

    def describe(self) -> str:
        return self.inner.describe()

    def get_weights(self) -> Weights:
        self.deletions.at(self.key, "route-read")
        return self.inner.get_weights()

    def set_weights(self, target: Weights, *, expected: Weights | None) -> Weights:
        self.deletions.at(self.key, "route-write")
        return self.inner.set_weights(target, expected=expected)

    def get_match(self) -> RouteMatch | None:
        self.deletions.at(self.key, "route-read")
        return self.inner.get_match()

    def set_match(
        self, target: RouteMatch | None, *, expected: RouteMatch | None, check: bool, owner: RouteOwner | None
    ) -> RouteMatch | None:
        self.deletions.at(self.key, "route-write")
        return self.inner.set_match(target, expected=expected, check=check, owner=owner)


@dataclass
class Fleet:
    shell: Shell
    scheduler: RolloutScheduler
    telemetry: Telemetry
    keys: list[str]


def fleet(deletions: Deletions) -> Fleet:
    """``LIMIT`` rollouts in namespaces of their own, on a shell whose reconciles call the hooks,
    wired to a scheduler the way the daemon wires its delete handler."""
    shell = Shell(rollouts=HookedRollouts(deletions))
    shell.capacity.limit = LIMIT
    shell.reconciler.monotonic = lambda: 0.0  # the judge's numbers alone are never flushed here
    telemetry = shell.actor.telemetry = Telemetry(runtime_collectors=False)
    plain = shell.reconciler.router_for

    def router_for(spec: RouterSpec, namespace: str, stable: str, canary: str, key: str) -> Router:
        return HookedRouter(plain(spec, namespace, stable, canary, key), key, deletions)

    shell.reconciler.router_for = router_for

    def reconcile(namespace: str, name: str) -> Any:
        key = f"{namespace}/{name}"
        deletions.at(key, "before")
        outcome = shell.reconciler.reconcile(namespace, name)
        deletions.at(key, "after")
        return outcome

    scheduler = RolloutScheduler(reconcile, clock=shell.clock.seconds)
    deletions.on_remove = shell.rollouts.delete  # the informer drops it from the cache...

    def forget(key: str) -> None:  # ...then runs the daemon's delete handler
        scheduler.remove(key)
        shell.reconciler.forget(key)

    deletions.on_forget = forget
    keys = []
    for i in range(LIMIT):
        keys.append(shell.rollouts.put(rollout_doc(name=f"r{i}", namespace=f"team{i}", steps=STEPS)))
    return Fleet(shell, scheduler, telemetry, keys)


def tick(f: Fleet, keys: list[str] | None = None) -> None:
    f.shell.clock.advance(10)
    f.shell.batcher.collect(10.0, f.shell.clock.now)
    for key in f.keys if keys is None else keys:
        f.scheduler.wake(key)
    f.scheduler.run_due()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doomed=st.lists(
        st.tuples(st.integers(0, LIMIT - 1), st.integers(0, len(POINTS) - 1), st.integers(0, len(POINTS) - 1)),
        min_size=1,
        max_size=LIMIT,
        unique_by=lambda d: d[0],
    ),
    at_tick=st.integers(0, 4),
)
def test_deleting_active_rollouts_releases_their_slots_whoever_sees_it_first(
    doomed: list[tuple[int, int, int]], at_tick: int
) -> None:
    deletions = Deletions()
    f = fleet(deletions)
    shell = f.shell
    for _ in range(at_tick):
        tick(f)
    if at_tick >= 3:
        assert {shell.rollouts.status(key).get("phase") for key in f.keys} == {"Paused"}
    for i, removed, forgotten in doomed:
        deletions.plan[f.keys[i]] = (removed, max(removed, forgotten))
    tick(f)
    for key in deletions.plan:  # a point the tick did not reach (no write this time) lands after it
        deletions.at(key, "after")

    # right after the deletions settled, before anything could wake a deleted rollout again
    gone = set(deletions.plan)
    left = [k for k in f.keys if k not in gone]
    assert shell.capacity.active == len(left), "a deleted rollout still holds its concurrency slot"
    assert shell.batcher.registered() == len(left), "a deleted rollout is still measured in the batches"
    assert {f"{ns}/{name}" for ns, name in f.telemetry.rollouts()} == set(left), "series of a deleted rollout"
    assert not (f.scheduler.known() & gone)
    tick(f, left)
    assert shell.capacity.active == len(left) and shell.batcher.registered() == len(left)
    # the freed slots are usable: as many new rollouts as were deleted all start
    fresh = [
        shell.rollouts.put(rollout_doc(name=f"new{i}", namespace=f"fresh{i}", steps=STEPS)) for i in range(len(gone))
    ]
    tick(f, left + fresh)
    assert [shell.rollouts.status(k).get("phase") for k in fresh] == ["Progressing"] * len(fresh)
    assert shell.capacity.active == LIMIT


def test_a_rollout_handed_to_another_replica_releases_its_slot_batch_and_series() -> None:
    f = fleet(Deletions())
    shell = f.shell
    tick(f)
    assert shell.capacity.active == LIMIT and shell.batcher.registered() == LIMIT
    lost = f.keys[0]
    shell.reconciler.leadership = Owns(lambda key: key != lost)
    tick(f)
    assert shell.capacity.active == LIMIT - 1 and shell.batcher.registered() == LIMIT - 1
    assert ("team0", "r0") not in f.telemetry.rollouts()
    assert shell.rollouts.status(lost)["phase"] in (Phase.PROGRESSING.value, Phase.PAUSED.value)


@dataclass
class Owns:
    """Leadership of some rollouts only (the others' shards are held by another replica)."""

    ours: Callable[[str], bool]

    def owns(self, key: str) -> bool:
        return self.ours(key)

    def guard(self, key: str) -> None:
        assert self.ours(key), f"a write for {key}, which is not ours"
