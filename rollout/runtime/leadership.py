"""Sharded leader election on ``coordination.k8s.io/v1`` Leases, with a write guard that fails closed.

Owns who may write which rollout. Rollouts are split into ``shards`` by a stable hash: shard of
``namespace/name`` = the first 8 bytes of its UTF-8 SHA-256 as a big-endian integer, modulo
``shards`` (Python's ``hash()`` is salted per process, so it cannot be shared). Each shard is one
Lease, ``<name>-shard-<i>`` (just ``<name>`` when there is one shard, the lease of the
single-leader deployments). All replicas must run with the same shard count: during a rolling
change of it, two counts would map one rollout to two shards, so change it by stopping every
replica first. Each replica needs its own identity (default: hostname and pid).

Per shard, a replica renews a lease it holds every ``retry`` seconds and takes one it does not:
- when the lease does not exist or was released (no holder): at once while it holds fewer than
  its preferred share, ``ceil(shards / expected_replicas)``, else after that state has lasted a
  whole lease duration (nobody under its share wanted it);
- when the lease's record (its resourceVersion) has not changed for its ``leaseDurationSeconds``
  *as observed on this replica's monotonic clock* from the moment it first read that record, so
  clock skew between nodes does not matter. With a watch-fed ``LeaseCache`` that moment is when
  the change arrived, so a dead replica's shards are taken over about one lease duration after
  its last renewal; a GET-polling ``LeaseStore`` adds up to one retry period.
Every write is conditional on the resourceVersion read, so of two replicas racing for a shard
the API server lets exactly one win, and a stale read can only make a write fail.

Fail closed: a replica holds a shard only until ``renew_deadline`` after the *send* time of its
last successful write of that lease; anyone else can take it no earlier than ``lease_seconds``
after reading that write, which happened after it was sent. ``guard(key)`` raises ``NotLeader``
unless the shard is held by that rule and returns the seconds left, so a write that starts after
a missed renewal is refused before the lease can change hands; the ``lease - renew_deadline``
margin covers a write already in flight. ``stop(release=True)`` stops claiming each shard before
handing its lease back, so another replica takes it over at once. ``on_change`` is told the set
of owned shards whenever it changes (also when a shard lapses at its deadline), so the runtime
can re-list and export which shards it leads; ``status()`` gives the details per shard.

Why not ``kubernetes.leaderelection`` (the pinned client, 37.x, ships a Lease-based ``LeaseLock``
next to its ConfigMap lock)? Its ``LeaderElection`` only runs callbacks: it offers no
"do I hold it now?" check to put before every write, and the ``onstarted_leading`` thread keeps
running after renewal fails; it measures the renew deadline and the observed expiry with the wall
clock (``time.time()``), which an NTP step moves; its lock's API calls carry no request timeout,
so one hung request stalls the renew loop while another replica takes over; it never releases the
lease on shutdown; ``run()`` returns after losing once instead of standing again; ``LeaseLock``
talks through the global default configuration, not a given ``ApiClient``; errors become ``False``
and a log line; and it elects one leader per lock, with no shards.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from rollout.errors import KubeConflict, KubeError, NotLeader
from rollout.kube.leases import LeaseRecord, Leases

log = logging.getLogger("rollout.leadership")


def shard_of(key: str, shards: int) -> int:
    """The shard of ``namespace/name``: SHA-256 of its UTF-8 bytes, first 8 bytes big-endian, mod ``shards``."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % shards


def lease_names(name: str, shards: int) -> tuple[str, ...]:
    """The Lease of each shard: ``name`` alone for one shard, else ``<name>-shard-<i>``."""
    return (name,) if shards == 1 else tuple(f"{name}-shard-{i}" for i in range(shards))


@dataclass(frozen=True)
class ShardStatus:
    """One shard as this replica sees it (for metrics and readiness)."""

    shard: int
    lease: str
    holder: str  # as last read; "" when free or never read
    owned: bool
    seconds_left: float  # until this replica's renew deadline; 0 when not owned


@dataclass
class _Shard:
    lease: str
    renewed_at: float | None = None  # monotonic send time of our last successful write
    attempted_at: float = -math.inf  # monotonic time of our last write attempt
    seen: str | None = None  # resourceVersion last read ("" = no lease); None = never read
    seen_at: float = 0.0  # monotonic time ``seen`` was first read
    record: LeaseRecord | None = None


class ShardedElector:
    """Holds some of ``shards`` Leases named after ``name``; see the module docstring."""

    def __init__(
        self,
        leases: Leases,
        identity: str,
        *,
        name: str,
        shards: int = 1,
        expected_replicas: int = 1,
        lease_seconds: float = 15.0,
        renew_deadline_seconds: float = 10.0,
        retry_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[frozenset[int]], None] | None = None,
    ) -> None:
        if not 0 < retry_seconds < renew_deadline_seconds < lease_seconds:
            raise ValueError("need 0 < retry < renew deadline < lease duration")
        if shards < 1 or expected_replicas < 1:
            raise ValueError("need at least one shard and one expected replica")
        self.leases, self.identity, self.shards = leases, identity, shards
        self.lease_seconds, self.renew_deadline, self.retry = lease_seconds, renew_deadline_seconds, retry_seconds
        self.share = math.ceil(shards / expected_replicas)
        self._monotonic, self._wall, self._on_change = monotonic, wall, on_change
        self._shards = [_Shard(lease) for lease in lease_names(name, shards)]
        rank = {i: hashlib.sha256(f"{identity}/{i}".encode()).digest() for i in range(shards)}
        self._preferred = {shard: n for n, shard in enumerate(sorted(range(shards), key=rank.__getitem__))}
        self._lock = threading.Lock()
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: frozenset[int] = frozenset()
        leases.subscribe(self._wake.set)

    # --- queries (any thread) -----------------------------------------------------------------

    def shard_of(self, key: str) -> int:
        return shard_of(key, self.shards)

    def seconds_left(self, shard: int) -> float:
        """Seconds until this replica's renew deadline for ``shard``; 0 when it does not hold it."""
        with self._lock:
            renewed = self._shards[shard].renewed_at
        return 0.0 if renewed is None else max(0.0, renewed + self.renew_deadline - self._monotonic())

    def holds(self, shard: int) -> bool:
        return self.seconds_left(shard) > 0

    def owns(self, key: str) -> bool:
        """Whether this replica may write the rollout ``namespace/name`` now."""
        return self.holds(self.shard_of(key))

    def owned(self) -> frozenset[int]:
        return frozenset(i for i in range(self.shards) if self.holds(i))

    def guard(self, key: str) -> float:
        """Raise ``NotLeader`` unless this replica holds ``key``'s shard; returns the seconds left."""
        shard = self.shard_of(key)
        left = self.seconds_left(shard)
        if left <= 0:
            lease = f"{self.leases.namespace}/{self._shards[shard].lease}"
            raise NotLeader(f"{self.identity} does not hold shard {shard} (lease {lease}), which {key} belongs to")
        return left

    def status(self) -> tuple[ShardStatus, ...]:
        with self._lock:
            views = [(s.lease, s.record.holder if s.record else "") for s in self._shards]
        return tuple(
            ShardStatus(i, lease, holder, self.holds(i), self.seconds_left(i))
            for i, (lease, holder) in enumerate(views)
        )

    # --- the loop -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True) -> None:
        """Stop the loop; with ``release``, hand back every lease this replica holds."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.retry * 2 + 30)
        if release:
            self.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = self.step()
            self._wake.wait(delay)
            self._wake.clear()

    def step(self) -> float:
        """One round over every shard; returns the seconds until the next round is due."""
        for i in sorted(range(self.shards), key=lambda i: (not self.holds(i), self._preferred[i])):
            if self._stop.is_set():
                break
            self._visit(i)
        self._notify()
        return self._next_due()

    def _visit(self, i: int) -> None:
        shard = self._shards[i]
        try:
            record = self.leases.read(shard.lease)
        except KubeError as e:
            log.warning("lease unreadable", extra=self._extra(shard, error=str(e)))
            return
        now = self._monotonic()
        version = record.resource_version if record is not None else ""
        with self._lock:
            if version != shard.seen:
                shard.seen, shard.seen_at = version, now
            shard.record = record
            if record is not None and record.holder != self.identity:
                shard.renewed_at = None  # someone else holds it: whatever we thought, we do not
        age = now - shard.seen_at
        if record is not None and record.holder == self.identity:
            if now - shard.attempted_at >= self.retry:
                acquired = record.acquire_time or self._wall()
                self._write(shard, record, acquired=acquired, transitions=record.transitions)
        elif record is None or not record.holder:
            if len(self.owned()) < self.share or age >= self.lease_seconds:
                self._write(shard, record, acquired=self._wall(), transitions=(record.transitions + 1) if record else 0)
        elif age >= (record.duration_seconds or self.lease_seconds):
            log.info("lease expired; taking it over", extra=self._extra(shard, previous=record.holder))
            self._write(shard, record, acquired=self._wall(), transitions=record.transitions + 1)

    def _write(self, shard: _Shard, previous: LeaseRecord | None, *, acquired: datetime, transitions: int) -> None:
        sent = self._monotonic()
        shard.attempted_at = sent
        duration, now = math.ceil(self.lease_seconds), self._wall()
        try:
            if previous is None:
                written = self.leases.create(shard.lease, self.identity, duration, now)
            else:
                written = self.leases.replace(
                    previous, self.identity, duration, now, acquired=acquired, transitions=transitions
                )
        except KubeConflict as e:
            log.info("lost a race for the lease", extra=self._extra(shard, error=str(e)))
            return
        except KubeError as e:
            log.warning("lease not written", extra=self._extra(shard, error=str(e)))
            return
        with self._lock:
            shard.record = written
            shard.seen, shard.seen_at = written.resource_version, self._monotonic()
            if not self._stop.is_set():  # a write that ends after stop() claims nothing
                shard.renewed_at = sent

    def _next_due(self) -> float:
        """Seconds until the next renewal, deadline or expiry; an instant already past waits a retry period."""
        now, due = self._monotonic(), [self.retry]
        with self._lock:
            for shard in self._shards:
                record, instants = shard.record, [shard.attempted_at + self.retry]
                if shard.renewed_at is not None:
                    instants.append(shard.renewed_at + self.renew_deadline)
                elif record is not None and record.holder and record.holder != self.identity:
                    instants.append(shard.seen_at + (record.duration_seconds or self.lease_seconds))
                elif shard.seen is not None:
                    instants.append(shard.seen_at + self.lease_seconds)
                due += [t - now for t in instants if t > now]
        return min(due)

    def _notify(self) -> None:
        owned = self.owned()
        if owned == self._reported:
            return
        self._reported = owned
        log.warning(
            "owned shards changed",
            extra={"event": "rollout.leadership", "identity": self.identity, "shards": sorted(owned)},
        )
        if self._on_change is not None:
            self._on_change(owned)

    def release(self) -> None:
        """Hand back every lease this replica holds (graceful shutdown); it stops claiming them first,
        for good: a round still running (or started later) claims nothing, so a lease handed back is
        never believed held."""
        self._stop.set()
        with self._lock:
            for shard in self._shards:
                shard.renewed_at = None
        for shard in self._shards:
            try:
                record = self.leases.read(shard.lease)
                if record is None or record.holder != self.identity:
                    continue
                now = self._wall()
                self.leases.replace(record, "", 1, now, acquired=now, transitions=record.transitions)
            except KubeError as e:
                log.warning("lease not released", extra=self._extra(shard, error=str(e)))
                continue
            log.info("lease released", extra=self._extra(shard, event="rollout.lease-released"))
        self._notify()

    def _extra(self, shard: _Shard, **fields: str) -> dict[str, str]:
        return {"event": "rollout.lease", "identity": self.identity, "lease": shard.lease, **fields}


class NamedLeases(Leases, Protocol):
    """Leases with the name of the one lease a single-lease elector holds (``LeaseStore`` is one)."""

    name: str


class LeaseElector:
    """The single-lease elector (one shard, the lease named by ``store.name``) under its first interface."""

    def __init__(
        self,
        store: NamedLeases,
        identity: str,
        *,
        lease_seconds: float = 15.0,
        renew_deadline_seconds: float = 10.0,
        retry_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.identity = identity
        self.elector = ShardedElector(
            store,
            identity,
            name=store.name,
            lease_seconds=lease_seconds,
            renew_deadline_seconds=renew_deadline_seconds,
            retry_seconds=retry_seconds,
            monotonic=monotonic,
            wall=wall,
            on_change=(lambda owned: on_change(bool(owned))) if on_change is not None else None,
        )

    def is_leader(self) -> bool:
        return self.elector.holds(0)

    def guard(self) -> None:
        """Raise ``NotLeader`` unless this replica holds the lease renewed within the renew deadline."""
        if not self.is_leader():
            lease = f"{self.elector.leases.namespace}/{self.elector.status()[0].lease}"
            raise NotLeader(f"{self.identity} does not hold the lease {lease}")

    def try_acquire_or_renew(self) -> bool:
        """One round: take or renew the lease if allowed. Returns whether we hold it now."""
        self.elector.step()
        return self.is_leader()

    def start(self) -> None:
        self.elector.start()

    def stop(self, *, release: bool = True) -> None:
        self.elector.stop(release=release)

    def release(self) -> None:
        self.elector.release()


__all__ = ["LeaseElector", "NamedLeases", "NotLeader", "ShardStatus", "ShardedElector", "lease_names", "shard_of"]
