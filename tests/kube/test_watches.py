"""Informer + KubeListWatch against a real kube-apiserver: create / update / delete are seen, our
own write's echo is nothing new, paged cluster-wide lists, 410 from a too-old resourceVersion,
reconnect after the connection is cut, relist with deletions after etcd compaction, and the
number of API requests while the cache serves reads and follows changes (the audit log's count)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rollout.errors import KubeForbidden
from rollout.kube.client import KubeClient
from rollout.kube.informers import Informer
from rollout.kube.watches import KubeListWatch, ResourceExpired
from rollout.routers.httproute import HTTP_ROUTES
from tests.e2e.observing import record
from tests.harness.kube import ControlPlane
from tests.kube.conftest import AuditedPlane
from tests.kube.support import CutProxy, audited_requests, compact_etcd, kubeconfig_via, wait_for

pytestmark = pytest.mark.kube
WEIGHT = "/spec/rules/0/backendRefs/0/weight"


def _route(name: str, weight: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {"rules": [{"backendRefs": [{"name": "stable", "port": 80, "weight": weight}]}]},
    }


class Seen:
    def __init__(self, informer: Informer) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        informer.add_handlers(
            on_add=lambda o: self._add("add", o),
            on_update=lambda old, new: self._add("update", new),
            on_delete=lambda o: self._add("delete", o),
        )

    def _add(self, kind: str, obj: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((kind, obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def has(self, *calls: tuple[str, str, str]) -> bool:
        with self._lock:
            return all(c in self.calls for c in calls)


def _weight(obj: dict[str, Any] | None) -> int:
    assert obj is not None
    return int(obj["spec"]["rules"][0]["backendRefs"][0]["weight"])


def test_create_update_delete_are_seen_and_our_own_write_is_nothing_new(kube: KubeClient, namespace: str) -> None:
    kube.create(HTTP_ROUTES, namespace, _route("a"))
    informer = Informer(KubeListWatch(kube, HTTP_ROUTES), namespaces=[namespace])
    seen = Seen(informer)
    informer.start()
    try:
        assert informer.wait_synced(10)
        assert seen.calls == [("add", namespace, "a")]
        assert "managedFields" in kube.get(HTTP_ROUTES, namespace, "a")["metadata"]
        assert "managedFields" not in (informer.get(namespace, "a") or {})["metadata"]

        kube.create(HTTP_ROUTES, namespace, _route("b", 2))
        kube.merge_patch(HTTP_ROUTES, namespace, "a", {"metadata": {"labels": {"team": "x"}}})
        wait_for(lambda: seen.has(("add", namespace, "b"), ("update", namespace, "a")), "add b, update a")

        before = len(seen.calls)
        written = kube.json_patch(HTTP_ROUTES, namespace, "a", [{"op": "replace", "path": WEIGHT, "value": 7}])
        informer.apply(written)  # False when the watch was quicker: either way one update, no GET
        assert _weight(informer.get(namespace, "a")) == 7
        version = int(written["metadata"]["resourceVersion"])
        kube.delete(HTTP_ROUTES, namespace, "b")
        wait_for(lambda: seen.has(("delete", namespace, "b")), "delete b")
        assert int(informer.resource_version(namespace)) > version  # the echo of our write came and went
        assert seen.calls[before:] == [("update", namespace, "a"), ("delete", namespace, "b")]
        assert informer.get(namespace, "b") is None
        stats = informer.stats()
        assert (stats.lists, stats.watches, stats.errors, stats.expired) == (1, 1, 0, 0)
    finally:
        informer.stop()


def test_cluster_wide_list_is_paged_and_covers_every_namespace(
    kube: KubeClient, control_plane: ControlPlane, namespace: str
) -> None:
    other = f"{namespace}-other"
    control_plane.create_namespace(other)
    for i in range(5):
        kube.create(HTTP_ROUTES, namespace, _route(f"r{i}"))
    kube.create(HTTP_ROUTES, other, _route("elsewhere"))
    source = KubeListWatch(kube, HTTP_ROUTES, page_size=2)
    listing = source.list(None)
    names = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in listing.items}
    assert {(namespace, f"r{i}") for i in range(5)} | {(other, "elsewhere")} <= names
    informer = Informer(source)
    informer.start()
    try:
        assert informer.wait_synced(10)
        assert len(informer.list(namespace)) == 5 and informer.get(other, "elsewhere") is not None
        kube.delete(HTTP_ROUTES, other, "elsewhere")
        wait_for(lambda: informer.get(other, "elsewhere") is None, "the delete in the other namespace")
    finally:
        informer.stop()


def test_a_watch_from_a_version_older_than_the_servers_window_is_resource_expired(
    kube: KubeClient, namespace: str
) -> None:
    stream = KubeListWatch(kube, HTTP_ROUTES).watch(namespace, "1")
    with pytest.raises(ResourceExpired, match=r"watch httproutes.gateway.networking.k8s.io in namespace .*410 Gone"):
        next(iter(stream))


def test_cut_connection_reconnects_and_a_compacted_version_relists_with_deletions(
    audited_plane: AuditedPlane, tmp_path: Path
) -> None:
    plane, ns = audited_plane.plane, "relist"
    plane.create_namespace(ns)
    admin = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    proxy = CutProxy(plane.port)
    client = KubeClient.from_kubeconfig(str(kubeconfig_via(plane.kubeconfig, proxy.port, tmp_path / "kubeconfig")))
    for name in ("keep", "change", "vanish"):
        admin.create(HTTP_ROUTES, ns, _route(name))
    informer = Informer(
        KubeListWatch(client, HTTP_ROUTES), namespaces=[ns], backoff_seconds=0.2, max_backoff_seconds=1.0
    )
    seen = Seen(informer)
    informer.start()
    try:
        assert informer.wait_synced(10)
        admin.merge_patch(HTTP_ROUTES, ns, "keep", {"metadata": {"labels": {"seen": "live"}}})
        wait_for(lambda: seen.has(("update", ns, "keep")), "a live update")

        proxy.cut()  # the network drops: the watch breaks and reconnects are refused
        admin.json_patch(HTTP_ROUTES, ns, "change", [{"op": "replace", "path": WEIGHT, "value": 9}])
        admin.delete(HTTP_ROUTES, ns, "vanish")
        admin.create(HTTP_ROUTES, ns, _route("new"))
        admin.merge_patch(HTTP_ROUTES, ns, "new", {"metadata": {"labels": {"x": "y"}}})
        wait_for(lambda: informer.stats().errors >= 2, "failed reconnects while cut")
        compacted = compact_etcd(plane)
        assert int(informer.resource_version(ns)) < compacted
        proxy.restore()

        wait_for(
            lambda: seen.has(("delete", ns, "vanish"), ("add", ns, "new"), ("update", ns, "change")),
            "the relist's deletes, adds and updates",
        )
        assert _weight(informer.get(ns, "change")) == 9 and informer.get(ns, "vanish") is None
        stats = informer.stats()
        assert stats.expired >= 1 and stats.lists >= 2
        admin.merge_patch(HTTP_ROUTES, ns, "keep", {"metadata": {"labels": {"seen": "again"}}})
        wait_for(lambda: (informer.get(ns, "keep") or {})["metadata"]["labels"] == {"seen": "again"}, "watching again")
    finally:
        informer.stop()
        proxy.close()
        client.close()
        admin.close()


def test_api_requests_while_reading_from_the_cache_and_following_changes(audited_plane: AuditedPlane) -> None:
    plane, ns = audited_plane.plane, "idle"
    plane.create_namespace(ns)
    rules = [{"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": ["list", "watch"]}]
    reader = KubeClient.from_kubeconfig(str(plane.service_account_kubeconfig(ns, "reader", rules)))
    user = f"system:serviceaccount:{ns}:reader"
    admin = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    routes = 100
    for i in range(routes):
        admin.create(HTTP_ROUTES, ns, _route(f"r{i}"))
    informer = Informer(KubeListWatch(reader, HTTP_ROUTES), namespaces=[ns])
    informer.start()
    try:
        assert informer.wait_synced(10)
        wait_for(lambda: any(r.verb == "watch" for r in audited_requests(audited_plane.audit_log, user)), "the watch")
        began = datetime.now(UTC)
        for i in range(routes):  # everyone else's changes arrive on the open watch
            admin.json_patch(HTTP_ROUTES, ns, f"r{i}", [{"op": "replace", "path": WEIGHT, "value": 2}])
        wait_for(lambda: all(_weight(informer.get(ns, f"r{i}")) == 2 for i in range(routes)), "every change")
        reads = 0
        for _ in range(100):  # a reconcile's reads, from memory
            for i in range(routes):
                assert informer.get(ns, f"r{i}") is not None
                reads += 1
        threading.Event().wait(10.0)  # idle
        ended = datetime.now(UTC)
    finally:
        informer.stop()
    requests = audited_requests(audited_plane.audit_log, user)
    during = [r for r in requests if began <= r.received <= ended]
    assert during == []
    assert [(r.verb, r.resource) for r in requests] == [("list", "httproutes"), ("watch", "httproutes")]
    record(
        "informer_api_requests",
        {
            "objects": routes,
            "changes_followed": routes,
            "cache_reads": reads,
            "idle_seconds": 10,
            "requests_in_window": len(during),
            "requests_total": [f"{r.verb} {r.resource}" for r in requests],
        },
    )
    reader.close()
    admin.close()


def test_a_forbidden_watch_is_a_typed_error_and_the_informer_keeps_trying(
    kube: KubeClient, control_plane: ControlPlane, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    kube.create(HTTP_ROUTES, namespace, _route("a"))
    rules = [{"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": ["list"]}]
    lister = KubeClient.from_kubeconfig(str(control_plane.service_account_kubeconfig(namespace, "lister", rules)))
    source = KubeListWatch(lister, HTTP_ROUTES)
    listing = source.list(namespace)
    with pytest.raises(KubeForbidden, match=r"forbidden to watch httproutes.gateway.networking.k8s.io in namespace"):
        next(iter(source.watch(namespace, listing.resource_version)))
    informer = Informer(source, namespaces=[namespace], backoff_seconds=0.05, max_backoff_seconds=0.1)
    caplog.set_level(logging.INFO, logger="rollout.informer")
    informer.start()
    try:
        assert informer.wait_synced(10) and informer.get(namespace, "a") is not None  # the list is allowed
        wait_for(lambda: informer.stats().errors >= 3, "repeated watch attempts")
        assert informer.stats().lists == 1  # the version is still good: no relist, just reconnects
        assert any("forbidden to watch" in str(getattr(r, "error", "")) for r in caplog.records)
    finally:
        informer.stop()
        lister.close()
