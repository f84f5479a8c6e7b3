"""One reconcile of one Rollout: observe, decide, persist, act.

Owns the order that makes crashes harmless: read the Rollout (policy and persisted state), observe
(route weights, the latest metrics reading, operator commands), call the pure ``decide``, write the
new status *before* acting (conditionally on the version read, and only when it changed), then
execute the actions (``acting``). A crash after the status write re-applies a weight write on the
next tick (the engine still sees it pending); notifications are at most once. Leadership is
checked before every write. When the policy cannot be used (invalid spec, a Rollout reaching into
another namespace, a failure inside ``decide``) the engine's ``hold`` runs instead: nothing moves
forward, an abort still rolls back. It never sleeps and never retries itself.

What a quiet reconcile costs: the validated policy is kept per spec version (uid, generation,
labels, annotations) and the parsed state per resourceVersion, so neither is rebuilt while the
object does not change; a status that differs only in the judge's running numbers (including the
numbers inside its messages) is written once per flush period (``flushing``); the decision's line
is INFO when something changed (status, actions, commands) and DEBUG otherwise.

Everything held for a rollout (its concurrency slot, its metrics registration, its series) is
released by ``forget`` when it is deleted or stops being this replica's; a reconcile that was
already running when that happened checks, after acting, that the Rollout still exists and is
still owned, and releases again if not, so whichever sees the deletion first nothing leaks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from rollout.core.actions import ScheduleNext
from rollout.core.conditions import conditions
from rollout.core.engine import Decision, decide, hold
from rollout.core.persisting import StateError
from rollout.core.readings import Reading
from rollout.core.states import Observations, Phase, RolloutState, RouteProblem, reads_match
from rollout.errors import KubeConflict, KubeError, KubeNotFound, NotLeader
from rollout.kube.commands import CommandObject
from rollout.kube.rollouts import RolloutObject, status_document
from rollout.metrics.base import AnalysisRequest
from rollout.policy.loading import load_object
from rollout.policy.models import Rollout, RouterSpec
from rollout.routers.base import Router
from rollout.runtime.acting import Actor
from rollout.runtime.flushing import flush_due, material
from rollout.runtime.gathering import Allowed, commands_of, live_route, vet

log = logging.getLogger("rollout.reconcile")


class RolloutWrites(Protocol):
    """Where a Rollout object is read and its status written (the API server, or a fake)."""

    def get(self, namespace: str, name: str) -> RolloutObject: ...

    def write_status(self, obj: RolloutObject, status: Mapping[str, Any]) -> RolloutObject: ...


class Rollouts(RolloutWrites, Protocol):
    """``RolloutWrites``, and whether a Rollout still exists (the reconciler's store)."""

    def exists(self, namespace: str, name: str) -> bool: ...


class Commands(Protocol):
    """Where RolloutCommands are found (the unhandled ones of one Rollout)."""

    def pending(self, namespace: str, rollout: str) -> Sequence[CommandObject]: ...


class Readings(Protocol):
    """The metrics batches: the latest reading of a rollout, and which rollouts need readings."""

    def latest(self, key: str) -> Reading | None: ...

    def register(self, request: AnalysisRequest) -> None: ...

    def forget(self, key: str) -> None: ...


class Leadership(Protocol):
    """Which rollouts this replica may reconcile, and the check before each write (raises NotLeader)."""

    def owns(self, key: str) -> bool: ...

    def guard(self, key: str) -> object: ...


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did; ``next_at`` is when the rollout wants its next tick (None: only when woken)."""

    key: str
    phase: Phase | None
    next_at: datetime | None
    decision: Decision | None = None
    error: str = ""
    wrote_status: bool = False


class Capacity:
    """The cap on concurrently active rollouts; rollouts already active always keep their slot."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def may_start(self, key: str) -> bool:
        with self._lock:
            return key in self._active or len(self._active) < self.limit

    def update(self, key: str, active: bool) -> None:
        with self._lock:
            (self._active.add if active else self._active.discard)(key)

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)


@dataclass(frozen=True)
class _Spec:
    """The policy of one version of a Rollout's spec, validated and vetted once."""

    fingerprint: tuple[object, ...]
    policy: Rollout | None
    invalid: str  # why it cannot be used ("": it can)


@dataclass
class Reconciler:
    rollouts: Rollouts
    commands: Commands
    router_for: Callable[[RouterSpec, str, str, str, str], Router]  # (router, its namespace, stable, canary, key)
    readings: Readings
    actor: Actor
    leadership: Leadership
    capacity: Capacity
    clock: Callable[[], datetime]
    identity: str
    allowed: Allowed | None = None
    commands_verified: Callable[[], bool] = lambda: True
    vet: Callable[[Rollout], str] = field(default_factory=lambda: vet({}))
    retry_seconds: float = 30.0
    flush_seconds: float = 60.0  # longest the judge's progress alone stays unwritten
    policies: dict[str, Rollout] = field(default_factory=dict)  # last valid policy of each rollout (Slack routing)
    reconcile_seconds: Callable[[float], None] = lambda _: None
    monotonic: Callable[[], float] = time.monotonic  # the flush periods' clock
    _unsaved: dict[str, tuple[str, RolloutState, float]] = field(default_factory=dict)
    _specs: dict[str, _Spec] = field(default_factory=dict)
    _states: dict[str, tuple[str, RolloutState]] = field(default_factory=dict)  # parsed, by resourceVersion

    def reconcile(self, namespace: str, name: str) -> Outcome:
        key = f"{namespace}/{name}"
        started = time.monotonic()
        try:
            if not self.leadership.owns(key):
                self.forget(key)  # not ours (any more): its slot, batch and series go with it
                return Outcome(key, None, None, error="not ours")
            return self._reconcile(namespace, name)
        except NotLeader as e:
            log.info("not the leader; nothing written", extra={"event": "rollout.not-leader", "rollout": key})
            return Outcome(key, None, None, error=str(e))
        except KubeNotFound:
            self.forget(key)
            return Outcome(key, None, None, error="deleted")
        except KubeError as e:
            self.actor.telemetry.api_error(type(e).__name__)
            log.warning("kubernetes API error", extra={"event": "rollout.api-error", "rollout": key, "error": str(e)})
            return Outcome(key, None, self._later(), error=str(e))
        finally:
            self.reconcile_seconds(time.monotonic() - started)

    def _must_write(self, key: str, new: dict[str, Any], old: dict[str, Any]) -> bool:
        """Write when anything material changed, or the judge's running numbers alone are due
        (``flushing``). Skipping is safe: the judge's memory and the reading it absorbed are kept
        (and, after a restart, restored) together, so a later interval covers the gap once."""
        if new == old:
            return False
        if material(new) != material(old):
            return True
        written = self._unsaved.get(key)
        return written is None or flush_due(key, written[2], self.monotonic(), self.flush_seconds)

    def forget(self, key: str) -> None:
        """A Rollout is gone (or no longer this replica's): release everything held for it."""
        self._unsaved.pop(key, None)
        self._specs.pop(key, None)
        self._states.pop(key, None)
        self.readings.forget(key)
        self.capacity.update(key, False)
        self.policies.pop(key, None)
        self.actor.forget(key)

    def _later(self) -> datetime:
        return self.clock() + timedelta(seconds=self.retry_seconds)

    def _reconcile(self, namespace: str, name: str) -> Outcome:
        obj = self.rollouts.get(namespace, name)
        key = obj.key
        unsaved = self._unsaved.get(key)
        if unsaved is not None and unsaved[0] == obj.resource_version:
            state = unsaved[1]  # the judge's progress since the last write (see _persist)
        else:
            try:
                state = self._state(obj)
            except StateError as e:
                return self._stuck(obj, f"the stored status cannot be read ({e}); fix or clear status.state")
        spec = self._spec(obj)
        policy, invalid = spec.policy, spec.invalid
        if policy is not None and not invalid:
            self.policies[key] = policy
        run_policy = policy if policy is not None and not invalid else self.policies.get(key)
        router = self._router(run_policy, state, namespace, key)
        with_match = reads_match(state, run_policy is not None and any(s.match for s in run_policy.spec.steps))
        live, match, problem = live_route(router, with_match=with_match) if router is not None else (None, None, None)
        pending = self.commands.pending(namespace, name)
        commands, by_id = commands_of(pending, self.allowed, daemon=self.identity, verified=self.commands_verified())
        reading = self.readings.latest(key) if state.phase.active else None
        now = self.clock()
        obs = Observations(
            route=live,
            match=match,
            route_problem=problem,
            write_problem=self.actor.last_write_problem(key),
            write_landed=self.actor.last_write_landed(key),
            reading=reading,
            commands=tuple(commands),
            may_start=self.capacity.may_start(key),
        )
        if invalid or policy is None:
            decision = hold(state, obs, now, f"the spec is invalid: {invalid}")
            self.actor.invalid(obj, invalid, now)
        else:
            try:
                decision = decide(policy, state, obs, now)
            except Exception as e:  # a bug in the engine must not stop this rollout's rollback path
                log.exception("decide failed", extra={"event": "rollout.decide-failed", "rollout": key})
                decision = hold(state, obs, now, f"internal error while deciding: {e!r}"[:500])
        steps = len(policy.spec.steps) if policy is not None else int(obj.status.get("steps") or 0)
        document = status_document(
            obj,
            decision.state,
            conditions=conditions(
                decision.state, obj.status.get("conditions") or [], now, generation=obj.generation, invalid=invalid
            ),
            steps=steps,
            invalid=invalid,
        )
        wrote = False
        changed = material(document) != material(dict(obj.status))
        if self._must_write(key, document, dict(obj.status)):
            self.leadership.guard(key)
            try:
                obj = self.rollouts.write_status(obj, document)
            except KubeConflict:
                self._unsaved.pop(key, None)
                return Outcome(key, state.phase, now, error="status changed under us; reconciling again")
            self._unsaved[key] = (obj.resource_version, decision.state, self.monotonic())
            self._states.pop(key, None)  # superseded: the state at this version is the one just decided
            wrote = True
        elif decision.state != state:
            since = self._unsaved.get(key, ("", state, self.monotonic()))[2]
            self._unsaved[key] = (obj.resource_version, decision.state, since)
            self._states.pop(key, None)
        self.capacity.update(key, decision.state.phase.active)
        self._metrics_request(policy, decision.state, key)
        self.actor.act(obj, router, decision, by_id, now, policy=policy or run_policy, was=state.phase, changed=changed)
        if not (self.rollouts.exists(namespace, name) and self.leadership.owns(key)):
            self.forget(key)  # deleted (or handed over) while this reconcile ran: release again
        quiet = not (changed or decision.commands or any(not isinstance(a, ScheduleNext) for a in decision.actions))
        level = logging.DEBUG if quiet else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, decision.reason or decision.state.message, extra=_fields(key, decision))
        return Outcome(key, decision.state.phase, _next(decision, now), decision, wrote_status=wrote)

    def _state(self, obj: RolloutObject) -> RolloutState:
        """The state stored in ``obj``'s status, parsed once per resourceVersion (raises ``StateError``)."""
        version = obj.resource_version
        cached = self._states.get(obj.key)
        if cached is not None and version and cached[0] == version:
            return cached[1]
        state = obj.state()
        self._states[obj.key] = (version, state)
        return state

    def _spec(self, obj: RolloutObject) -> _Spec:
        """``obj``'s policy, validated and vetted once per version of what it depends on."""
        meta = obj.raw.get("metadata") or {}
        generation = meta.get("generation")
        fingerprint = (
            meta.get("uid"),
            generation if generation else obj.resource_version,  # no generation: any change may be a new spec
            repr(sorted((meta.get("labels") or {}).items())),
            repr(sorted((meta.get("annotations") or {}).items())),
        )
        cached = self._specs.get(obj.key)
        if cached is not None and cached.fingerprint == fingerprint:
            return cached
        loaded = load_object({k: v for k, v in obj.raw.items() if k != "status"}, f"Rollout {obj.key}")
        policy = loaded.rollouts[0].rollout if loaded.ok else None
        invalid = "; ".join(str(p) for p in loaded.problems)[:2000]
        if policy is not None and not invalid:
            invalid = self.vet(policy)
        spec = self._specs[obj.key] = _Spec(fingerprint, policy, invalid)
        return spec

    def _router(self, policy: Rollout | None, state: RolloutState, namespace: str, key: str) -> Router | None:
        """The run's own route and backends while a run is active (a new spec cannot redirect it)."""
        if state.phase.active and state.router is not None and state.stable_backend and state.canary_backend:
            route_ns = state.route_namespace or namespace
            return self.router_for(state.router, route_ns, state.stable_backend, state.canary_backend, key)
        if policy is None:
            return None
        stable, canary = policy.spec.stable, policy.spec.canary
        if state.phase.active and state.stable_backend and state.canary_backend:
            stable, canary = state.stable_backend, state.canary_backend
        return self.router_for(policy.spec.router, policy.route_namespace(), stable, canary, key)

    def _metrics_request(self, policy: Rollout | None, state: RolloutState, key: str) -> None:
        if policy is not None and state.phase.active:
            self.readings.register(AnalysisRequest.for_policy(policy))
        else:
            self.readings.forget(key)

    def _stuck(self, obj: RolloutObject, why: str) -> Outcome:
        log.error("cannot reconcile", extra={"event": "rollout.stuck", "rollout": obj.key, "error": why})
        self.actor.invalid(obj, why, self.clock())
        return Outcome(obj.key, None, self._later(), error=why)


def _next(decision: Decision, now: datetime) -> datetime | None:
    nexts = [a.at for a in decision.actions if isinstance(a, ScheduleNext)]
    if nexts:
        return nexts[0]
    if decision.weight_changes or decision.match_changes:
        return now  # see the write land
    return None


def _fields(key: str, decision: Decision) -> dict[str, Any]:
    s = decision.state
    fields: dict[str, Any] = {
        "event": "rollout.decision",
        "rollout": key,
        "phase": s.phase.value,
        "step": s.number,
        "weight": s.observed.canary if s.observed else None,
        "desired": s.desired.canary,
    }
    if s.match is not None or s.match_observed is not None:
        fields["match"] = str(s.match_observed) if s.match_observed is not None else "none"
    if s.verdict is not None:
        fields["verdict"] = s.verdict.kind.value
        for check in s.verdict.checks:
            fields[f"{check.name}.value"] = check.value
            fields[f"{check.name}.limit"] = check.limit
            if check.evidence is not None:
                fields[f"{check.name}.evidence"] = check.evidence
    return fields


__all__ = ["Capacity", "Outcome", "Reconciler", "RouteProblem"]
