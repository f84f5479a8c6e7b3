"""An in-memory Lease API (``LeaseServer``) and one replica's view of it (``MemoryLeases``, the
``rollout.kube.leases.Leases`` protocol), with a clock the test moves (``FakeClock``).

``MemoryLeases`` either reads the server on every call (like ``LeaseStore``'s GETs) or, with
``cached=True``, from its own copy that only ``sync()`` refreshes (like ``LeaseCache``'s watch,
delayed as long as the test wants). Writes are conditional on the resourceVersion exactly as the
API server's are; ``down`` makes every call fail like a partition, ``lose_answers`` stores the
write but fails the call (the answer was lost), and ``LeaseServer.on_store`` runs while a write
is on its way (before the server checks and stores it) and just after it is stored, so a test can
move the clock across a write in flight or run another replica's round in the middle of it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rollout.errors import KubeConflict, KubeError, KubeNotFound
from rollout.kube.leases import LeaseRecord

EPOCH = datetime(2030, 1, 1, tzinfo=UTC)


class FakeClock:
    """A monotonic clock and a wall clock that move only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now)

    def advance(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


class LeaseServer:
    """The Lease objects as the API server stores them; ``history`` is every stored write in order."""

    def __init__(self) -> None:
        self.objects: dict[str, LeaseRecord] = {}
        self.history: list[LeaseRecord] = []
        self.on_store: Callable[[str], None] | None = None  # called with "before" / "after"
        self._versions = itertools.count(1)

    def _hook(self, moment: str) -> None:
        if self.on_store is not None:
            self.on_store(moment)

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        stored = replace(record, resource_version=str(next(self._versions)))
        self.objects[record.name] = stored
        self.history.append(stored)
        self._hook("after")
        return stored

    def create(self, name: str, holder: str, duration: int, now: datetime) -> LeaseRecord:
        self._hook("before")  # the request is on its way; the check and the store happen together
        if name in self.objects:
            raise KubeConflict(f"conflict on create leases {name}: already exists")
        return self._store(LeaseRecord(name, holder, duration, now, now, 0, ""))

    def replace(
        self, previous: LeaseRecord, holder: str, duration: int, now: datetime, *, acquired: datetime, transitions: int
    ) -> LeaseRecord:
        self._hook("before")
        current = self.objects.get(previous.name)
        if current is None:
            raise KubeNotFound(f"cannot update leases {previous.name}: not found")
        if current.resource_version != previous.resource_version:
            raise KubeConflict(f"conflict on update leases {previous.name}: the object has been modified")
        return self._store(LeaseRecord(previous.name, holder, duration, now, acquired, transitions, ""))


class MemoryLeases:
    """One replica's access to a ``LeaseServer`` (see the module docstring)."""

    def __init__(
        self, server: LeaseServer, *, cached: bool = False, namespace: str = "rollout-system", name: str = ""
    ) -> None:
        self.server, self.cached, self.namespace, self.name = server, cached, namespace, name
        self.down = False
        self.lose_answers = False
        self.view: dict[str, LeaseRecord] = dict(server.objects)
        self.requests = 0
        self._wakes: list[Callable[[], None]] = []

    def _check(self, verb: str, name: str) -> None:
        self.requests += 1
        if self.down:
            raise KubeError(f"cannot {verb} leases {name}: the API server is unreachable")

    def read(self, name: str) -> LeaseRecord | None:
        if self.cached:
            return self.view.get(name)
        self._check("get", name)
        return self.server.objects.get(name)

    def _answer(self, verb: str, record: LeaseRecord) -> LeaseRecord:
        if self.lose_answers:
            raise KubeError(f"cannot {verb} leases {record.name}: the connection broke before the answer")
        if self.cached:
            self.view[record.name] = record  # as LeaseCache applies a write's answer to its cache
        return record

    def create(self, name: str, holder: str, duration: int, now: datetime) -> LeaseRecord:
        self._check("create", name)
        return self._answer("create", self.server.create(name, holder, duration, now))

    def replace(
        self, previous: LeaseRecord, holder: str, duration: int, now: datetime, *, acquired: datetime, transitions: int
    ) -> LeaseRecord:
        self._check("update", previous.name)
        stored = self.server.replace(previous, holder, duration, now, acquired=acquired, transitions=transitions)
        return self._answer("update", stored)

    def subscribe(self, wake: Callable[[], None]) -> bool:
        if not self.cached:
            return False
        self._wakes.append(wake)
        return True

    def sync(self) -> bool:
        """Deliver the server's current leases to the cached view (a watch catching up); returns whether any changed."""
        if self.down or self.view == self.server.objects:
            return False
        self.view = dict(self.server.objects)
        for wake in self._wakes:
            wake()
        return True
