"""Executing a decision's actions after its state was persisted: route writes (weights, and an A/B
step's managed route, owned by the Rollout), Events, notifications, command acknowledgements,
telemetry.

Owns what happens when an action fails: a route write that fails is remembered (by kind:
permanent or transient) and handed to the engine on the next tick, which decides what it means
(``Observations.write_problem``); Events for a repeating cause are recorded once and counted, not
once per tick; notifications go through a bounded queue (``delivering``) so a slow or absent
Slack never delays a write or a rollback. Leadership is checked before every write. It decides
nothing and retries only through ``rollout.runtime.retrying``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from rollout.core.actions import ApprovalResolved, Level, Notify, RequestApproval, SetMatch, SetWeights
from rollout.core.engine import Decision
from rollout.core.states import Phase, RouteProblem, Weights
from rollout.core.verdicts import Verdict
from rollout.errors import KubeError, NotLeader, RouterError
from rollout.kube.commands import CommandObject
from rollout.kube.rollouts import RolloutObject
from rollout.notifiers.base import RolloutSnapshot, snapshot_of
from rollout.policy.models import Rollout
from rollout.routers.base import RouteOwner, Router
from rollout.runtime.gathering import problem_of
from rollout.runtime.retrying import ROUTE_WRITES

log = logging.getLogger("rollout.acting")
_CAUSES_PER_ROLLOUT = 16  # Event causes remembered per rollout (a repeat of one of them is only counted)
_CAUSES = 50_000  # and in all


class Telemetry(Protocol):
    """The daemon's own metrics, as the actor feeds them."""

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
    ) -> None: ...

    def promoted(self, namespace: str, name: str) -> None: ...

    def rolled_back(self, namespace: str, name: str) -> None: ...

    def forget(self, namespace: str, name: str) -> None: ...

    def api_error(self, kind: str) -> None: ...


class Events(Protocol):
    def record(
        self, namespace: str, name: str, *, uid: str | None, reason: str, message: str, warning: bool, now: datetime
    ) -> str: ...

    def repeat(self, namespace: str, event: str, *, regarding: str, count: int, now: datetime) -> None: ...


class Acknowledger(Protocol):
    def acknowledge(self, obj: CommandObject, result: object, *, by: str, now: datetime) -> None: ...


class Notifications(Protocol):
    """Where notifications go (``delivering.Delivery`` queues them for the notifier); each call
    carries the rollout's snapshot after the decision (its channels, run, thread and state)."""

    def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None: ...

    def request_approval(self, snapshot: RolloutSnapshot, request: RequestApproval) -> None: ...

    def approval_resolved(self, snapshot: RolloutSnapshot, resolved: ApprovalResolved) -> None: ...

    def update(self, snapshot: RolloutSnapshot) -> None: ...


SERIES_EVERY = timedelta(minutes=5)  # a repeating cause's Event count is brought up to date this often
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class _Cause:
    """One cause of Events for a rollout: how often it happened, its Event, when that was updated."""

    count: int = 0
    event: str = ""  # the Event's name once recorded
    updated_at: datetime = _NEVER


class Actor:
    """Executes decisions; see the module docstring."""

    def __init__(
        self,
        *,
        acknowledger: Acknowledger,
        notifications: Notifications,
        events: Events | None,
        guard: Callable[[str], object],
        telemetry: Telemetry,
        identity: str,
    ) -> None:
        self.acknowledger, self.notifications, self.events = acknowledger, notifications, events
        self.guard, self.telemetry, self.identity = guard, telemetry, identity
        self._lock = threading.Lock()
        self._write_problems: dict[str, RouteProblem] = {}
        self._landed: dict[str, Weights] = {}
        self._recorded: dict[str, dict[tuple[str, str], _Cause]] = {}  # rollout -> (reason, message) -> its Event
        self._causes = 0  # how many (rollout, reason, message) are remembered, bounded

    def last_write_problem(self, key: str) -> RouteProblem | None:
        """How the last write for ``key`` failed (consumed: the next tick sees it once)."""
        with self._lock:
            return self._write_problems.pop(key, None)

    def last_write_landed(self, key: str) -> Weights | None:
        """The weights of the last write for ``key`` the API server stored (consumed like the problem)."""
        with self._lock:
            return self._landed.pop(key, None)

    def forget(self, key: str) -> None:
        with self._lock:
            self._write_problems.pop(key, None)
            self._landed.pop(key, None)
            self._causes -= len(self._recorded.pop(key, {}))
        namespace, _, name = key.partition("/")
        self.telemetry.forget(namespace, name)

    def act(
        self,
        obj: RolloutObject,
        router: Router | None,
        decision: Decision,
        commands: Mapping[str, CommandObject],
        now: datetime,
        *,
        policy: Rollout | None,
        was: Phase,
        changed: bool = False,
    ) -> None:
        """Execute ``decision`` (taken for a rollout that was in phase ``was``; ``changed``: its status
        changed in a way people see, so messages showing its state are refreshed)."""
        key = obj.key
        snapshot = snapshot_of(key, decision.state, obj.status, policy, now)
        for action in decision.actions:
            if isinstance(action, SetMatch | SetWeights):
                self._write(obj, router, action, now)
            elif isinstance(action, Notify):
                warning = action.level in (Level.WARNING, Level.FAILURE)
                self.event(
                    obj, action.event.removeprefix("rollout.").title().replace("-", ""), action.message, warning, now
                )
                self.notifications.notify(snapshot, action)
            elif isinstance(action, RequestApproval):
                self.event(obj, "ApprovalRequested", action.message, False, now)
                self.notifications.request_approval(snapshot, action)
            elif isinstance(action, ApprovalResolved):
                who = f" by {action.by}" if action.by else ""
                self.event(obj, "ApprovalResolved", f"step {action.number}: {action.resolution.value}{who}", False, now)
                self.notifications.approval_resolved(snapshot, action)
        for result in decision.commands:
            command = commands.get(result.id)
            if command is None:
                continue
            try:
                self.guard(key)
                self.acknowledger.acknowledge(command, result, by=self.identity, now=now)
            except (KubeError, NotLeader) as e:
                log.warning(
                    "command not acknowledged", extra={"event": "rollout.ack-failed", "rollout": key, "error": str(e)}
                )
        s = decision.state
        namespace, name = obj.namespace, obj.name
        if changed and s.run_started_at is not None:
            self.notifications.update(snapshot)
        self.telemetry.observe(
            namespace,
            name,
            phase=s.phase.value,
            step=s.number,
            steps=int(obj.status.get("steps") or 0),
            canary_weight=s.observed.canary if s.observed else 0,
            desired_canary_weight=s.desired.canary,
            verdict=s.verdict,
        )
        if s.phase.final and was is not s.phase:
            if s.phase is Phase.PROMOTED:
                self.telemetry.promoted(namespace, name)
            else:  # rolled back or aborted: the traffic went back to stable
                self.telemetry.rolled_back(namespace, name)

    def _write(self, obj: RolloutObject, router: Router | None, action: SetWeights | SetMatch, now: datetime) -> None:
        key = obj.key
        if router is None:
            return
        owner = RouteOwner(obj.name, obj.namespace, str(obj.raw.get("metadata", {}).get("uid") or ""))

        def write() -> object:
            self.guard(key)
            if isinstance(action, SetMatch):
                return router.set_match(action.target, expected=action.expected, check=action.check, owner=owner)
            return router.set_weights(action.target, expected=action.expected)

        try:
            stored = ROUTE_WRITES.call(write)
        except RouterError as e:
            problem = problem_of(e)
            with self._lock:
                self._write_problems[key] = problem
            self.telemetry.api_error(type(e).__name__)
            log.error(
                "route write failed",
                extra={"event": "rollout.write-failed", "rollout": key, "kind": problem.kind.value, "error": str(e)},
            )
            self.event(obj, "RouteWriteFailed", f"{problem.kind.value}: {problem.message}", True, now)
            return
        if isinstance(action, SetMatch):
            log.info(
                "managed route written",
                extra={
                    "event": "rollout.match",
                    "rollout": key,
                    "match": str(action.target) if action.target is not None else "removed",
                    "purpose": action.purpose.value,
                    "reason": action.reason,
                },
            )
            return
        if isinstance(stored, Weights):
            with self._lock:
                self._landed[key] = stored
        log.info(
            "weights written",
            extra={
                "event": "rollout.weights",
                "rollout": key,
                "canary": action.target.canary,
                "stable": action.target.stable,
                "purpose": action.purpose.value,
                "reason": action.reason,
            },
        )

    def invalid(self, obj: RolloutObject, why: str, now: datetime) -> None:
        log.error(
            "cannot use the Rollout's spec; holding",
            extra={"event": "rollout.invalid", "rollout": obj.key, "error": why},
        )
        self.event(obj, "InvalidSpec", why, True, now)

    def event(self, obj: RolloutObject, reason: str, message: str, warning: bool, now: datetime) -> None:
        """Record an Event, once per cause; a repeated cause updates that Event's ``series`` (its count
        and last time) at most every ``SERIES_EVERY``, so ``kubectl get events`` shows one line per
        cause with how often it happened."""
        if self.events is None:
            return
        cause = (reason, message[:1024])
        with self._lock:
            causes = self._recorded.setdefault(obj.key, {})
            seen = causes.get(cause)
            if seen is None:
                seen = causes[cause] = _Cause()
                self._causes += 1
                if len(causes) > _CAUSES_PER_ROLLOUT:  # bounded whatever happens: its oldest cause goes
                    del causes[next(iter(causes))]
                    self._causes -= 1
            if self._causes > _CAUSES:  # and in all: the rollouts first seen longest ago go first
                for stale in list(itertools.islice(self._recorded, 100)):
                    if stale != obj.key:
                        self._causes -= len(self._recorded.pop(stale))
            seen.count += 1
            due = bool(seen.event) and seen.count >= 2 and now - seen.updated_at >= SERIES_EVERY
        if seen.event and not due:
            return
        try:
            self.guard(obj.key)
            if seen.event:
                self.events.repeat(obj.namespace, seen.event, regarding=obj.name, count=seen.count, now=now)
            else:
                uid = obj.raw.get("metadata", {}).get("uid")
                seen.event = self.events.record(
                    obj.namespace, obj.name, uid=uid, reason=reason, message=message, warning=warning, now=now
                )
            seen.updated_at = now
        except (KubeError, NotLeader) as e:
            log.warning(
                "event not recorded", extra={"event": "rollout.event-failed", "rollout": obj.key, "error": str(e)}
            )

    def repeats(self, key: str, reason: str, message: str) -> int:
        """How often a cause was seen for ``key`` (1: recorded once, never repeated)."""
        with self._lock:
            seen = self._recorded.get(key, {}).get((reason, message[:1024]))
            return seen.count if seen is not None else 0
