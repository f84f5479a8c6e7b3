"""Both installs applied to real API servers, as ``kubectl apply --server-side`` would (strict field
validation, real writes): on a cluster WITHOUT the Prometheus Operator's CRDs the kustomize base
and ``helm template`` (cluster-wide and per-namespace) apply, and the monitoring objects are
refused; on a cluster WITH the operator's real ServiceMonitor and PrometheusRule CRDs (from the
prometheus-operator Go module) the optional components and the chart's toggles apply too. The
per-namespace chart's RBAC is then asked what the daemon may do.

Each cluster is its own API server, so "bare" stays bare whatever else the session installed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.manifests import BASE, COMPONENTS, EXAMPLE_OVERLAY, documents
from tests.deploy.test_helm import FULL
from tests.deploy.test_rbac import allowed
from tests.harness.deploy_tools import Applier, ToolError, helm_template, kustomize_build, prometheus_operator_crds
from tests.harness.kube import ControlPlane, ControlPlaneError

pytestmark = pytest.mark.kube

MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}


def _plane(name: str, *, operator: bool) -> Iterator[ControlPlane]:
    try:
        crds = prometheus_operator_crds() if operator else []
        plane = ControlPlane(name=name).start()
    except (ToolError, ControlPlaneError) as e:
        pytest.fail(str(e), pytrace=False)
    try:
        plane.apply_crds(crds)
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def bare() -> Iterator[ControlPlane]:
    """A cluster with nothing but Kubernetes' own APIs."""
    yield from _plane("rollout-bare", operator=False)


@pytest.fixture(scope="module")
def monitored() -> Iterator[ControlPlane]:
    """A cluster with the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs."""
    yield from _plane("rollout-monitored", operator=True)


def _namespaces(plane: ControlPlane, *names: str) -> None:
    for name in names:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        plane.request("POST", "/api/v1/namespaces", namespace, ok=(201, 409))


def _kinds(objs: list[dict[str, Any]]) -> set[str]:
    return {o["kind"] for o in objs}


def test_the_kustomize_base_applies_on_a_bare_cluster(bare: ControlPlane) -> None:
    objs = kustomize_build(BASE)
    applied = Applier(bare).apply_all(objs)
    assert len(applied) == len(objs) == 15
    stored = bare.request("GET", "/apis/apps/v1/namespaces/rollout-system/deployments/rollout")
    assert stored["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["ephemeral-storage"] == "256Mi"


def test_the_helm_chart_applies_on_a_bare_cluster(bare: ControlPlane) -> None:
    _namespaces(bare, "delivery", "shop", "web")
    cluster_wide = helm_template(release="rd", namespace="delivery")
    namespaced = helm_template({"watchNamespaces": ["shop", "web"]}, release="rn", namespace="delivery")
    assert not MONITORING_KINDS & (_kinds(cluster_wide) | _kinds(namespaced))
    for objs in (cluster_wide, namespaced):
        assert len(Applier(bare).apply_all(objs)) == len(objs)


def test_the_monitoring_objects_need_the_operator(bare: ControlPlane) -> None:
    """The reason they are optional: a bare cluster refuses them (so the tests above prove something)."""
    monitor = documents(COMPONENTS / "servicemonitor" / "servicemonitor.yaml")[0]
    with pytest.raises(ControlPlaneError, match=r"ServiceMonitor \(monitoring.coreos.com/v1\) is not served"):
        Applier(bare).apply(monitor, dry_run=True)


def test_the_per_namespace_chart_grants_the_daemon_its_namespaces_only(bare: ControlPlane) -> None:
    _namespaces(bare, "delivery", "shop", "web", "elsewhere")
    Applier(bare).apply_all(helm_template({"watchNamespaces": ["shop", "web"]}, release="rn", namespace="delivery"))
    daemon = "system:serviceaccount:delivery:rn-rollout"
    groups = ["system:serviceaccounts", "system:serviceaccounts:delivery", "system:authenticated"]

    def may(verb: str, resource: str, group: str, namespace: str, subresource: str = "") -> bool:
        return allowed(
            bare, verb, resource, group=group, namespace=namespace, subresource=subresource, user=daemon, groups=groups
        )

    for namespace in ("shop", "web"):
        assert may("patch", "httproutes", "gateway.networking.k8s.io", namespace)
        assert may("list", "rollouts", "delivery.rollout.dev", namespace)
        assert may("patch", "rollouts", "delivery.rollout.dev", namespace, "status")
        assert may("create", "events", "", namespace)
    assert may("update", "leases", "coordination.k8s.io", "delivery")
    assert not may("patch", "httproutes", "gateway.networking.k8s.io", "elsewhere")
    assert not may("patch", "gatewayroutes", "appmesh.k8s.aws", "elsewhere")
    assert not may("list", "rollouts", "delivery.rollout.dev", "")  # nothing cluster-wide
    assert not may("update", "leases", "coordination.k8s.io", "shop")
    assert not may("get", "secrets", "", "delivery")


def test_with_the_operator_the_optional_components_apply(monitored: ControlPlane) -> None:
    objs = kustomize_build(EXAMPLE_OVERLAY)
    assert _kinds(objs) >= MONITORING_KINDS
    assert len(Applier(monitored).apply_all(objs)) == len(objs)
    rule = monitored.request("GET", "/apis/monitoring.coreos.com/v1/namespaces/rollout-system/prometheusrules/rollout")
    assert rule["spec"]["groups"][0]["rules"][0]["alert"] == "RolloutRolledBack"


def test_with_the_operator_the_charts_monitoring_toggles_apply(monitored: ControlPlane) -> None:
    _namespaces(monitored, "delivery", "monitoring", "shop", "web")
    objs = helm_template(FULL, release="rd", namespace="delivery")
    assert MONITORING_KINDS | {"Ingress"} <= _kinds(objs)
    assert len(Applier(monitored).apply_all(objs)) == len(objs)
    monitor = monitored.request("GET", "/apis/monitoring.coreos.com/v1/namespaces/delivery/servicemonitors/rd-rollout")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
