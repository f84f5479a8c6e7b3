"""Leases on a real kube-apiserver: LeaseStore's conditional writes, LeaseCache's reads from its
watch, and three ShardedElectors (threads, each with its own ServiceAccount, client and cache)
sharing three shards with the production timings (lease 15 s, renew deadline 10 s, retry 2 s):
one is killed (stops renewing, releases nothing), its shard is taken over, and at no sampled
moment do two electors both hold one shard; the Leases' holderIdentity history agrees, and the
audit log counts each elector's requests."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollout.errors import KubeConflict
from rollout.kube.client import KubeClient
from rollout.kube.informers import Informer
from rollout.kube.leases import LEASES, LeaseCache, LeaseStore, record_of
from rollout.kube.watches import KubeListWatch
from rollout.runtime.leadership import ShardedElector, lease_names
from tests.e2e.observing import record
from tests.kube.conftest import AuditedPlane
from tests.kube.support import audited_requests, wait_for

pytestmark = pytest.mark.kube
NOW = datetime(2030, 1, 1, tzinfo=UTC)
LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
LEASE_RULES = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "list", "watch", "create", "update"],
    }
]


def test_lease_store_writes_are_conditional_on_the_version_read(kube: KubeClient, namespace: str) -> None:
    a, b = LeaseStore(kube, namespace), LeaseStore(kube, namespace)
    assert a.read("l") is None
    created = a.create("l", "a", 15, NOW)
    assert (created.name, created.holder, created.duration_seconds, created.transitions) == ("l", "a", 15, 0)
    with pytest.raises(KubeConflict, match=f"conflict on create leases.coordination.k8s.io {namespace}/l"):
        b.create("l", "b", 15, NOW)
    seen_by_b = b.read("l")
    assert seen_by_b == created
    renewed = a.replace(created, "a", 15, NOW + timedelta(seconds=2), acquired=NOW, transitions=0)
    assert renewed.renew_time == NOW + timedelta(seconds=2) and renewed.acquire_time == NOW
    with pytest.raises(KubeConflict, match=f"conflict on update leases.coordination.k8s.io {namespace}/l"):
        b.replace(seen_by_b, "b", 15, NOW, acquired=NOW, transitions=1)
    assert b.read("l") == renewed


def test_lease_cache_reads_its_own_writes_at_once_and_others_from_the_watch(kube: KubeClient, namespace: str) -> None:
    cache = LeaseCache(kube, namespace)
    cache.start()
    try:
        assert cache.wait_synced(10)
        assert cache.read("l") is None
        mine = cache.create("l", "me", 15, NOW)
        assert cache.read("l") == mine  # no waiting for the watch
        LeaseStore(kube, namespace).replace(mine, "other", 15, NOW, acquired=NOW, transitions=1)
        wait_for(lambda: (cache.read("l") or mine).holder == "other", "the other writer's change")
    finally:
        cache.stop()


class Sampler:
    """Samples every elector's view every 5 ms; records any moment two hold one shard."""

    def __init__(self, electors: list[ShardedElector]) -> None:
        self.electors = electors
        self.violations: list[tuple[float, int, list[str]]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            for shard in range(3):
                holders = [e.identity for e in self.electors if e.holds(shard)]
                if len(holders) > 1:
                    self.violations.append((time.monotonic(), shard, holders))
            self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_three_electors_share_three_shards_and_a_killed_ones_shard_is_taken_over(
    audited_plane: AuditedPlane,
) -> None:
    plane, ns = audited_plane.plane, "shards"
    plane.create_namespace(ns)
    admin = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    history: list[tuple[str, str, int]] = []
    observer = Informer(KubeListWatch(admin, LEASES), namespaces=[ns])

    def observed(obj: dict[str, Any]) -> None:
        lease = record_of(obj)
        history.append((lease.name, lease.holder, lease.transitions))

    observer.add_handlers(on_add=observed, on_update=lambda old, new: observed(new))
    observer.start()
    clients, caches, electors = [], [], []
    for i in range(3):
        client = KubeClient.from_kubeconfig(str(plane.service_account_kubeconfig(ns, f"replica-{i}", LEASE_RULES)))
        cache = LeaseCache(client, ns)
        cache.start()
        assert cache.wait_synced(10)
        electors.append(
            ShardedElector(
                cache,
                f"replica-{i}",
                name="rollout",
                shards=3,
                expected_replicas=3,
                lease_seconds=LEASE,
                renew_deadline_seconds=RENEW,
                retry_seconds=RETRY,
            )
        )
        clients.append(client)
        caches.append(cache)
    sampler = Sampler(electors)
    try:
        for elector in electors:
            elector.start()
        wait_for(lambda: sorted(len(e.owned()) for e in electors) == [1, 1, 1], "one shard each", timeout=30)
        steady_from = datetime.now(UTC)
        time.sleep(6.0)
        steady_to = datetime.now(UTC)

        victim = electors[2]
        (shard,) = victim.owned()
        left = victim.seconds_left(shard)
        victim.stop(release=False)  # killed: no release, no more renewals
        killed = time.monotonic()
        last_renewal = killed - (RENEW - left)
        survivors = electors[:2]
        wait_for(lambda: any(e.holds(shard) for e in survivors), "the takeover", timeout=3 * LEASE)
        taken = time.monotonic()
        new_holder = next(e.identity for e in survivors if e.holds(shard))
        assert not victim.holds(shard)
        wait_for(lambda: sorted(len(e.owned()) for e in survivors) == [1, 2], "the survivors hold every shard")
        time.sleep(1.0)
    finally:
        sampler.stop()
        for elector in electors[:2]:
            elector.stop(release=True)
    try:
        assert sampler.violations == [], sampler.violations[:5]
        assert sampler.samples > 1000
        # Hang guards; the numbers are recorded below.
        assert taken - last_renewal <= LEASE + 1.5
        assert taken - killed <= LEASE + 1.5

        lease = lease_names("rollout", 3)[shard]
        wait_for(lambda: sum(1 for n, h, _ in history if h == "") >= 3, "the survivors' releases")
        holders = [h for n, h, _ in history if n == lease]
        changes = [h for i, h in enumerate(holders) if i == 0 or h != holders[i - 1]]
        assert changes == ["replica-2", new_holder, ""], changes
        for other in set(lease_names("rollout", 3)) - {lease}:
            others = [h for n, h, _ in history if n == other]
            assert len({h for h in others if h}) == 1, others  # never changed hands
        transitions = [t for n, h, t in history if n == lease and h == new_holder]
        assert transitions and min(transitions) == 1

        steady = {
            e.identity: [
                f"{r.verb} {r.resource}"
                for r in audited_requests(audited_plane.audit_log, f"system:serviceaccount:{ns}:{e.identity}")
                if steady_from <= r.received <= steady_to
            ]
            for e in electors
        }
        for identity, requests in steady.items():
            assert set(requests) <= {"update leases"}, (identity, requests)  # renewals only: no GET, no LIST
        record(
            "sharded_takeover",
            {
                "lease_renew_retry_seconds": [LEASE, RENEW, RETRY],
                "kill_to_takeover_seconds": round(taken - killed, 3),
                "last_renewal_to_takeover_seconds": round(taken - last_renewal, 3),
                "samples_without_two_holders": sampler.samples,
                "steady_requests_per_elector_in_6s": {k: len(v) for k, v in steady.items()},
            },
        )
    finally:
        observer.stop()
        for cache in caches:
            cache.stop()
        for client in clients:
            client.close()
        admin.close()
