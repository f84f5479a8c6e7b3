"""One reconcile of one Rollout: observe, decide, persist, act.

Owns the order that makes crashes harmless: read the object (policy, persisted state, operator
commands), read the live route weights, sample metrics, call the pure ``decide``, write the new
state to the status *before* acting (conditional on the resourceVersion read), then execute the
actions through the adapters. A crash after the status write re-applies the weights on the next
tick (the engine sees the route still at ``prior_weights``); notifications are at most once.
Leadership is checked (``guard``) before every write. It never sleeps and never retries itself.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollout.core.actions import Notify, RequestApproval, SetWeights
from rollout.core.engine import Decision, decide
from rollout.core.states import MetricsSample, Observations, Phase, RolloutState, Weights
from rollout.errors import (
    KubeConflict,
    KubeError,
    KubeNotFound,
    NotifierError,
    NotLeader,
    RouterError,
    WeightsDrifted,
)
from rollout.kube.events import EventRecorder
from rollout.kube.rollouts import RolloutObject, RolloutObjects, status_document
from rollout.metrics.base import AnalysisRequest
from rollout.notifiers.base import Notifier
from rollout.policy.loading import load_object
from rollout.policy.models import Rollout
from rollout.routers.base import Router
from rollout.runtime.batching import MetricsBatcher
from rollout.runtime.retrying import ROUTE_WRITES, SLACK_CALLS
from rollout.runtime.telemetry import Telemetry

log = logging.getLogger("rollout.reconcile")


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did; ``interval`` is when the rollout wants its next tick (seconds)."""

    key: str
    phase: Phase | None
    interval: float
    decision: Decision | None = None
    error: str = ""


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


class Reconciler:
    def __init__(
        self,
        *,
        objects: RolloutObjects,
        router_for: Callable[[Rollout], Router],
        batcher: MetricsBatcher,
        notifier: Notifier,
        events: EventRecorder | None,
        guard: Callable[[], None],
        capacity: Capacity,
        telemetry: Telemetry,
        clock: Callable[[], datetime],
        default_interval: float = 30.0,
    ) -> None:
        self.objects, self.router_for, self.batcher = objects, router_for, batcher
        self.notifier, self.events, self.guard, self.capacity = notifier, events, guard, capacity
        self.telemetry, self.clock, self.default_interval = telemetry, clock, default_interval
        self._reported_invalid: dict[str, int] = {}
        self.policies: dict[str, Rollout] = {}  # the last valid policy of each rollout, for Slack routing

    def reconcile(self, namespace: str, name: str) -> Outcome:
        key = f"{namespace}/{name}"
        started = time.monotonic()
        try:
            return self._reconcile(namespace, name)
        except NotLeader as e:
            log.info("not the leader; nothing written", extra={"event": "rollout.not-leader", "rollout": key})
            return Outcome(key, None, self.default_interval, error=str(e))
        except KubeNotFound:
            self.batcher.forget(key)
            self.capacity.update(key, False)
            return Outcome(key, None, self.default_interval, error="deleted")
        except KubeError as e:
            self.telemetry.api_errors.labels(kind=type(e).__name__).inc()
            log.warning("kubernetes API error", extra={"event": "rollout.api-error", "rollout": key, "error": str(e)})
            return Outcome(key, None, self.default_interval, error=str(e))
        finally:
            self.telemetry.reconcile_seconds.observe(time.monotonic() - started)

    def _reconcile(self, namespace: str, name: str) -> Outcome:
        obj = self.objects.get(namespace, name)
        loaded = load_object(obj.raw, f"Rollout {obj.key}")
        if not loaded.ok:
            self._invalid(obj, "; ".join(str(p) for p in loaded.problems))
            return Outcome(obj.key, None, self.default_interval, error="invalid policy")
        self._reported_invalid.pop(obj.key, None)
        policy = loaded.rollouts[0].rollout
        self.policies[obj.key] = policy
        interval = policy.spec.analysis.interval.total_seconds()
        state = obj.state()
        now = self.clock()
        router = self.router_for(with_backends(policy, state))
        live, weights_error = self._live_weights(router)
        sample = self._sample(policy, state, now)
        now = self.clock()  # sampling may have waited on Prometheus: decide with the time of deciding
        obs = Observations(
            weights=live,
            weights_error=weights_error,
            metrics=sample,
            commands=obj.commands(),
            may_start=self.capacity.may_start(obj.key),
        )
        decision = decide(policy, state, obs, now)
        self._log(obj.key, decision, sample)
        if decision.state != state:
            self.guard()
            obj = self.objects.write_status(
                obj,
                status_document(
                    obj,
                    decision.state,
                    conditions=_conditions(obj, decision.state, now, valid=True, message=""),
                    steps=len(policy.spec.steps),
                ),
            )
        self.capacity.update(obj.key, decision.state.phase.active)
        self.telemetry.observe(obj.key, decision.state)
        self._act(obj, policy, router, decision, now)
        if decision.state.handled_commands and obj.commands():
            try:
                self.guard()
                self.objects.prune_commands(obj, decision.state.handled_commands)
            except KubeConflict:
                pass  # a new command arrived; it is read on the next tick
        return Outcome(obj.key, decision.state.phase, interval, decision)

    def _live_weights(self, router: Router) -> tuple[Weights | None, str]:
        try:
            return router.get_weights(), ""
        except RouterError as e:
            self.telemetry.api_errors.labels(kind=type(e).__name__).inc()
            return None, str(e)

    def _sample(self, policy: Rollout, state: RolloutState, now: datetime) -> MetricsSample | None:
        if not state.phase.active or state.weights.canary == 0:
            self.batcher.forget(policy.key)
            return None
        sample = self.batcher.sample(AnalysisRequest.for_policy(policy), now)
        if sample.outcome.value in ("unavailable", "query-error"):
            self.telemetry.prometheus_errors.labels(outcome=sample.outcome.value).inc()
        return sample

    def _act(self, obj: RolloutObject, policy: Rollout, router: Router, decision: Decision, now: datetime) -> None:
        for action in decision.actions:
            if isinstance(action, SetWeights):
                self._set_weights(obj, router, action, now)
            elif isinstance(action, Notify):
                self._event(
                    obj,
                    action.event.replace("rollout.", "").title().replace("-", ""),
                    action.message,
                    warning=action.level.value in ("warning", "failure"),
                    now=now,
                )
                self._deliver(obj.key, functools.partial(self.notifier.notify, obj.key, action))
            elif isinstance(action, RequestApproval):
                self._event(obj, "ApprovalRequested", action.message, warning=False, now=now)
                self._deliver(obj.key, functools.partial(self.notifier.request_approval, obj.key, action))
        del policy

    def _set_weights(self, obj: RolloutObject, router: Router, action: SetWeights, now: datetime) -> None:
        try:

            def write() -> Weights:
                self.guard()
                return router.set_weights(action.target, expected=action.expected)

            result = ROUTE_WRITES.call(write)
            log.info(
                "weights written",
                extra={
                    "event": "rollout.weights",
                    "rollout": obj.key,
                    "canary": result.canary,
                    "stable": result.stable,
                    "purpose": action.purpose.value,
                    "reason": action.reason,
                },
            )
        except WeightsDrifted as e:
            log.warning("drift", extra={"event": "rollout.drift", "rollout": obj.key, "error": str(e)})
        except RouterError as e:
            self.telemetry.api_errors.labels(kind=type(e).__name__).inc()
            log.error(
                "route write failed",
                extra={"event": "rollout.write-failed", "rollout": obj.key, "error": str(e)},
            )
            self._event(obj, "RouteWriteFailed", str(e), warning=True, now=now)

    def _deliver(self, key: str, send: Callable[[], None]) -> None:
        try:
            SLACK_CALLS.call(send)
        except NotifierError as e:
            log.warning(
                "notification failed",
                extra={"event": "rollout.notify-failed", "rollout": key, "error": str(e)},
            )

    def _event(self, obj: RolloutObject, reason: str, message: str, *, warning: bool, now: datetime) -> None:
        if self.events is None:
            return
        try:
            self.guard()
            uid = obj.raw.get("metadata", {}).get("uid")
            self.events.record(
                obj.namespace, obj.name, uid=uid, reason=reason, message=message, warning=warning, now=now
            )
        except KubeError as e:
            log.warning(
                "event not recorded",
                extra={"event": "rollout.event-failed", "rollout": obj.key, "error": str(e)},
            )

    def _invalid(self, obj: RolloutObject, problems: str) -> None:
        log.error(
            "invalid Rollout; nothing done",
            extra={"event": "rollout.invalid", "rollout": obj.key, "error": problems},
        )
        if self._reported_invalid.get(obj.key) == obj.generation:
            return
        self._reported_invalid[obj.key] = obj.generation
        now = self.clock()
        self._event(obj, "InvalidPolicy", problems, warning=True, now=now)
        state = obj.state()
        self.guard()
        self.objects.write_status(
            obj,
            status_document(obj, state, conditions=_conditions(obj, state, now, valid=False, message=problems))
            | {"message": f"invalid policy: {problems}"[:2000]},
        )

    def _log(self, key: str, decision: Decision, sample: MetricsSample | None) -> None:
        s = decision.state
        verdict = s.verdict
        fields: dict[str, Any] = {
            "event": "rollout.decision",
            "rollout": key,
            "phase": s.phase.value,
            "step": s.step + 1,
            "weight": s.weights.canary,
            "failures": s.failures,
            "reason": decision.reason,
        }
        if verdict is not None and sample is not None:
            fields["verdict"] = verdict.kind.value
            for check in verdict.checks:
                fields[f"{check.name}.value"] = check.value
                fields[f"{check.name}.limit"] = check.limit
                if check.evidence is not None:
                    fields[f"{check.name}.evidence"] = check.evidence
        log.info(decision.reason or s.message, extra=fields)


def with_backends(policy: Rollout, state: RolloutState) -> Rollout:
    """The policy as the running run sees it: a run that a new revision superseded with other
    backends still moves (rolls back) the traffic of its own two backends."""
    pair = (state.stable_backend, state.canary_backend)
    if not state.phase.active or not all(pair) or pair == (policy.spec.stable, policy.spec.canary):
        return policy
    spec = policy.spec.model_copy(update={"stable": pair[0], "canary": pair[1]})
    return policy.model_copy(update={"spec": spec})


def _conditions(
    obj: RolloutObject, state: RolloutState, now: datetime, *, valid: bool, message: str
) -> list[Mapping[str, Any]]:
    previous = {c.get("type"): c for c in obj.status.get("conditions", []) if isinstance(c, Mapping)}

    def condition(kind: str, status: bool, reason: str, text: str) -> dict[str, Any]:
        value = "True" if status else "False"
        before = previous.get(kind)
        since = before.get("lastTransitionTime") if before and before.get("status") == value else None
        return {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": text[:1000],
            "lastTransitionTime": since or now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "observedGeneration": obj.generation,
        }

    return [
        condition("PolicyValid", valid, "Valid" if valid else "Invalid", message),
        condition("Completed", state.phase.final, state.phase.value, state.end_reason or state.message),
    ]
