"""Leader election on a ``coordination.k8s.io/v1`` Lease, with a write guard that fails closed.

Owns who may write. A candidate takes the lease when it is free or when its record has not
changed for a whole lease duration *as observed locally* (monotonic clock, so clock skew between
nodes does not matter); the leader renews every ``retry`` seconds. ``is_leader()`` turns false as
soon as ``renew_deadline`` passes without a successful renewal, which is before the lease can
expire for anyone else: a deposed or partitioned leader stops writing first. ``release()`` hands
the lease back on graceful shutdown. (The official Python client's elector is ConfigMap-based and
keeps running its callback after losing the lease, hence this one.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from rollout.errors import KubeConflict, KubeError, KubeNotFound, NotLeader
from rollout.kube.leases import LeaseRecord, LeaseStore

log = logging.getLogger("rollout.leadership")


class LeaseElector:
    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        *,
        lease_seconds: float = 15.0,
        renew_deadline_seconds: float = 10.0,
        retry_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if not retry_seconds < renew_deadline_seconds < lease_seconds:
            raise ValueError("need retry < renew deadline < lease duration")
        self.store, self.identity = store, identity
        self.lease_seconds, self.renew_deadline, self.retry = (
            lease_seconds,
            renew_deadline_seconds,
            retry_seconds,
        )
        self._monotonic, self._wall, self._on_change = monotonic, wall, on_change
        self._renewed_at: float | None = None  # monotonic time of our last successful renewal
        self._observed: tuple[str, datetime | None] | None = None
        self._observed_at = 0.0
        self._acquired: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_leader = False
        self._lock = threading.Lock()

    # --- queries ------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        with self._lock:
            return self._renewed_at is not None and self._monotonic() - self._renewed_at < self.renew_deadline

    def guard(self) -> None:
        """Raise ``NotLeader`` unless this replica holds a lease renewed within the renew deadline."""
        if not self.is_leader():
            raise NotLeader(f"{self.identity} does not hold the lease {self.store.namespace}/{self.store.name}")

    # --- the loop -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.retry * 2 + 5)
        if release:
            self.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.try_acquire_or_renew()
            self._notify()
            self._stop.wait(self.retry)

    def _notify(self) -> None:
        leader = self.is_leader()
        if leader != self._was_leader:
            self._was_leader = leader
            log.warning(
                "leadership changed",
                extra={"event": "rollout.leadership", "leader": leader, "identity": self.identity},
            )
            if self._on_change is not None:
                self._on_change(leader)

    def try_acquire_or_renew(self) -> bool:
        """One round: take or renew the lease if allowed. Returns whether we hold it now."""
        now = self._wall()
        try:
            record = self.store.get()
        except KubeNotFound:
            try:
                self.store.create(self.identity, int(self.lease_seconds), now)
            except KubeError as e:
                log.info("lease not created", extra={"event": "rollout.lease", "error": str(e)})
                return False
            self._renewed(now)
            return True
        except KubeError as e:
            log.warning("lease unreadable", extra={"event": "rollout.lease", "error": str(e)})
            return False
        mine = record.holder == self.identity
        if not mine and not self._expired(record):
            with self._lock:
                self._renewed_at = None
            return False
        acquired = self._acquired if mine and self._acquired else now
        transitions = record.transitions if mine or not record.holder else record.transitions + 1
        try:
            self.store.replace(
                record,
                self.identity,
                int(self.lease_seconds),
                now,
                acquired=acquired,
                transitions=transitions,
            )
        except KubeConflict:
            return self.is_leader()
        except KubeError as e:
            log.warning("lease not renewed", extra={"event": "rollout.lease", "error": str(e)})
            return self.is_leader()
        self._acquired = acquired
        self._renewed(now)
        return True

    def _renewed(self, now: datetime) -> None:
        del now
        with self._lock:
            self._renewed_at = self._monotonic()

    def _expired(self, record: LeaseRecord) -> bool:
        if not record.holder:
            return True  # released
        seen = (record.holder, record.renew_time)
        if seen != self._observed:
            self._observed, self._observed_at = seen, self._monotonic()
            return False
        duration = record.duration_seconds or self.lease_seconds
        return self._monotonic() - self._observed_at >= duration

    def release(self) -> None:
        """Give the lease up (graceful shutdown) so a standby takes over without waiting for expiry."""
        if not self.is_leader():
            return
        with self._lock:
            self._renewed_at = None
        try:
            record = self.store.get()
            if record.holder == self.identity:
                self.store.replace(
                    record,
                    "",
                    1,
                    self._wall(),
                    acquired=self._acquired or self._wall(),
                    transitions=record.transitions,
                )
            log.info("lease released", extra={"event": "rollout.lease-released", "identity": self.identity})
        except KubeError as e:
            log.warning("lease not released", extra={"event": "rollout.lease", "error": str(e)})
        self._notify()


__all__ = ["LeaseElector", "NotLeader"]
