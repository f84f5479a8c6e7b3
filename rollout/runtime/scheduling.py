"""Scheduling with apscheduler: one job per Rollout at its analysis interval, a periodic resync,
a watch that wakes a rollout's job when its object changes, and the policy-directory sync.

Owns *when* reconciles run: never two at once for the same rollout (``max_instances=1``), missed
runs coalesced, and nothing runs on a replica that is not the leader. It decides nothing itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from rollout.errors import KubeError
from rollout.kube.rollouts import RolloutObjects
from rollout.policy.quantities import parse_duration
from rollout.runtime.reconciling import Outcome, Reconciler

log = logging.getLogger("rollout.scheduling")
RESYNC_JOB = "resync"
POLICY_JOB = "policy-files"


class RolloutScheduler:
    def __init__(
        self,
        *,
        reconciler: Reconciler,
        objects: RolloutObjects,
        namespaces: Sequence[str],
        is_leader: Callable[[], bool],
        resync_seconds: float,
        default_interval: float,
        workers: int = 8,
        policy_sync: Callable[[], None] | None = None,
        policy_poll_seconds: float = 2.0,
    ) -> None:
        self.reconciler, self.objects, self.namespaces = reconciler, objects, list(namespaces)
        self.is_leader, self.resync_seconds, self.default_interval = (
            is_leader,
            resync_seconds,
            default_interval,
        )
        self._intervals: dict[str, float] = {}
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self.scheduler.add_job(
            self.resync,
            IntervalTrigger(seconds=resync_seconds),
            id=RESYNC_JOB,
            next_run_time=datetime.now(UTC),
        )
        if policy_sync is not None:
            self.scheduler.add_job(
                self._guarded(policy_sync),
                IntervalTrigger(seconds=policy_poll_seconds),
                id=POLICY_JOB,
                next_run_time=datetime.now(UTC),
            )
        self.last_resync_ok: datetime | None = None

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop scheduling new runs and wait (up to ``timeout``) for the ones in flight to finish."""
        self.scheduler.pause()
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        with self._idle:
            while self._busy and datetime.now(UTC) < deadline:
                self._idle.wait(0.1)
        self.scheduler.shutdown(wait=False)

    def _guarded(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if self.is_leader():
                fn()

        return run

    # --- jobs ---------------------------------------------------------------------------------

    def resync(self) -> None:
        """List every Rollout; make sure each has a job at its interval; drop jobs of deleted ones."""
        try:
            found = self.objects.list(self.namespaces)
        except KubeError as e:
            log.warning("resync failed", extra={"event": "rollout.resync-failed", "error": str(e)})
            return
        self.last_resync_ok = datetime.now(UTC)
        keys = set()
        for obj in found:
            keys.add(obj.key)
            self.ensure(obj.namespace, obj.name, _interval_of(obj.raw, self.default_interval))
        with self._lock:
            gone = set(self._intervals) - keys
        for key in gone:
            self.remove(key)

    def ensure(self, namespace: str, name: str, interval: float, *, now: bool = False) -> None:
        key = f"{namespace}/{name}"
        with self._lock:
            known = self._intervals.get(key)
            self._intervals[key] = interval
        if known is None:
            self.scheduler.add_job(
                self._run,
                IntervalTrigger(seconds=interval),
                args=(namespace, name),
                id=key,
                next_run_time=datetime.now(UTC),
                replace_existing=True,
            )
        elif known != interval:
            self.scheduler.reschedule_job(key, trigger=IntervalTrigger(seconds=interval))
        if now and known is not None:
            self.wake(key)

    def wake(self, key: str) -> None:
        """Run the rollout's job as soon as possible (an object change, an operator command)."""
        with contextlib.suppress(JobLookupError):
            self.scheduler.modify_job(key, next_run_time=datetime.now(UTC))

    def remove(self, key: str) -> None:
        with self._lock:
            self._intervals.pop(key, None)
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(key)
        self.reconciler.telemetry.forget(key)

    def _run(self, namespace: str, name: str) -> None:
        if not self.is_leader():
            return
        with self._lock:
            self._busy += 1
        try:
            outcome = self.reconciler.reconcile(namespace, name)
            self._follow(namespace, name, outcome)
        except Exception:  # a bug must not kill the scheduler thread; it is logged with its traceback
            log.exception("reconcile crashed", extra={"event": "rollout.crash", "rollout": f"{namespace}/{name}"})
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _follow(self, namespace: str, name: str, outcome: Outcome) -> None:
        if outcome.error == "deleted":
            self.remove(outcome.key)
            return
        if outcome.error:  # a failed reconcile reports the default interval, not the rollout's
            return
        with self._lock:
            known = self._intervals.get(outcome.key)
        if known is not None and known != outcome.interval:
            self.ensure(namespace, name, outcome.interval)


def _interval_of(raw: dict[str, Any], default: float) -> float:
    try:
        text = raw["spec"]["analysis"]["interval"]
    except (KeyError, TypeError):
        return default
    try:
        return max(1.0, parse_duration(text).total_seconds())
    except ValueError:
        return default
