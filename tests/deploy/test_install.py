"""Both installs applied to real API servers, as ``kubectl apply --server-side`` would (strict field
validation, real writes): on a cluster WITHOUT the Prometheus Operator's CRDs the kustomize base
(alone, and with the slack-http component) and ``helm template`` (cluster-wide, per-namespace, and
in Slack's http mode) apply, and the monitoring objects are
refused; on a cluster WITH the operator's real ServiceMonitor and PrometheusRule CRDs (from the
prometheus-operator Go module) the optional components and the chart's toggles apply too. The
per-namespace chart's RBAC is then asked what the daemon may do, and the admission policy the base
installs is shown to refuse a RolloutCommand whose ``spec.by`` is not its creator (users impersonated
through the admin token, bound to the base's people roles) and to admit the creator's own.

Each cluster is its own API server, so "bare" stays bare whatever else the session installed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rollout.kube.access import AccessReviews
from rollout.kube.client import KubeClient
from rollout.kube.commands import POLICY_NAME
from tests.deploy.manifests import BASE, COMPONENTS, EXAMPLE_OVERLAY, SLACK_HTTP, documents
from tests.deploy.test_helm import FULL
from tests.deploy.test_rbac import allowed
from tests.harness.deploy_tools import (
    Applier,
    ToolError,
    helm_template,
    kustomize_build,
    kustomize_build_with,
    prometheus_operator_crds,
)
from tests.harness.kube import ControlPlane, ControlPlaneError
from tests.security.test_commands import _create_as

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
    assert len(applied) == len(objs) == 21
    for plural in ("validatingadmissionpolicies", "validatingadmissionpolicybindings"):
        bare.request("GET", f"/apis/admissionregistration.k8s.io/v1/{plural}/{POLICY_NAME}")
    stored = bare.request("GET", "/apis/apps/v1/namespaces/rollout-system/deployments/rollout")
    assert stored["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["ephemeral-storage"] == "256Mi"
    policy = bare.request("GET", "/apis/networking.k8s.io/v1/namespaces/rollout-system/networkpolicies/rollout")
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [8080]  # Socket Mode


def test_the_kustomize_base_with_slack_http_applies_on_a_bare_cluster(bare: ControlPlane) -> None:
    objs = kustomize_build_with(BASE, [SLACK_HTTP])
    assert len(Applier(bare).apply_all(objs)) == len(objs) == 21
    policy = bare.request("GET", "/apis/networking.k8s.io/v1/namespaces/rollout-system/networkpolicies/rollout")
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [8080, 8081]
    settings = bare.request("GET", "/api/v1/namespaces/rollout-system/configmaps/rollout-settings")
    assert settings["data"]["ROLLOUT_SLACK__MODE"] == "http"


def test_the_helm_chart_applies_on_a_bare_cluster(bare: ControlPlane) -> None:
    _namespaces(bare, "delivery", "shop", "web")
    cluster_wide = helm_template(release="rd", namespace="delivery")
    namespaced = helm_template({"watchNamespaces": ["shop", "web"]}, release="rn", namespace="delivery")
    http = helm_template({"slack": {"mode": "http"}}, release="rh", namespace="delivery")
    assert not MONITORING_KINDS & (_kinds(cluster_wide) | _kinds(namespaced) | _kinds(http))
    for objs in (cluster_wide, namespaced, http):
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

    delivery = "delivery.rollout.dev"
    for namespace in ("shop", "web"):
        assert may("patch", "httproutes", "gateway.networking.k8s.io", namespace)
        assert may("list", "rollouts", delivery, namespace)
        assert may("patch", "rollouts", delivery, namespace, "status")
        assert may("create", "events", "", namespace)
        for verb in ("list", "watch", "get", "create", "delete"):
            assert may(verb, "rolloutcommands", delivery, namespace)
        assert may("patch", "rolloutcommands", delivery, namespace, "status")
    for verb in ("list", "watch", "get", "create", "update"):
        assert may(verb, "leases", "coordination.k8s.io", "delivery")
    # cluster-scoped, so granted cluster-wide even per namespace: the command checks
    assert may("create", "subjectaccessreviews", "authorization.k8s.io", "")
    assert allowed(
        bare, "get", "validatingadmissionpolicies", group="admissionregistration.k8s.io", name=POLICY_NAME,
        user=daemon, groups=groups,
    )  # fmt: skip
    assert not may("patch", "httproutes", "gateway.networking.k8s.io", "elsewhere")
    assert not may("patch", "gatewayroutes", "appmesh.k8s.aws", "elsewhere")
    assert not may("list", "rollouts", delivery, "")  # nothing namespaced is granted cluster-wide
    assert not may("list", "rolloutcommands", delivery, "")
    assert not may("create", "rolloutcommands", delivery, "elsewhere")
    assert not may("list", "leases", "coordination.k8s.io", "shop")
    assert not may("update", "leases", "coordination.k8s.io", "shop")
    assert not may("get", "secrets", "", "delivery")
    assert not may("list", "validatingadmissionpolicies", "admissionregistration.k8s.io", "")


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


# --- the installed admission policy ----------------------------------------------------------

BASE_DAEMON = "system:serviceaccount:rollout-system:rollout"


def _until(
    attempt: Callable[[], tuple[int, dict[str, Any]]], done: Callable[[int], bool]
) -> tuple[int, dict[str, Any]]:
    """Repeat ``attempt`` until ``done(status)``, for at most 20 s: an admission policy that was just
    created or changed is enforced within a moment, not at once. The last answer either way."""
    deadline = time.monotonic() + 20
    while True:
        status, answer = attempt()
        if done(status) or time.monotonic() > deadline:
            return status, answer
        time.sleep(0.5)


def test_the_installed_policy_refuses_a_forged_author_and_admits_the_real_one(bare: ControlPlane) -> None:
    Applier(bare).apply_all(kustomize_build(BASE))  # as installed (the chart tests above rename the daemon)
    _namespaces(bare, "team-a")
    applier = Applier(bare)
    for user, role in (("alice", "rollout-operator"), ("victor", "rollout-viewer")):
        applier.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{user}-{role}", "namespace": "team-a"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
            }
        )

    # RBAC lets alice create commands; the policy refuses her claiming to be someone else.
    status, refused = _until(lambda: _create_as(bare, "alice", "oncall", by="bob"), lambda code: code != 201)
    assert status == 403, refused
    assert "spec.by must be the requesting user alice" in refused["message"]
    assert POLICY_NAME in refused["message"]
    status, refused = _create_as(bare, "alice", "oncall", slack_user="U0APPROVER", ref="approval-x-1")
    assert status == 403, refused
    assert "only the rollout daemon records Slack clicks" in refused["message"]

    status, created = _create_as(bare, "alice", "oncall")
    assert status == 201, created
    assert (created["spec"]["by"], created["spec"]["command"]) == ("alice", "approve")
    assert "oncall" in created["spec"]["groups"]

    # The daemon's own ServiceAccount records a Slack click (its ClusterRole lets it create commands).
    status, click = _until(
        lambda: _create_as(bare, BASE_DAEMON, None, slack_user="U0APPROVER", ref="approval-x-1"),
        lambda code: code == 201,
    )
    assert status == 201, click

    # A viewer may not create a command at all (RBAC, before admission).
    status, forbidden = _create_as(bare, "victor", None)
    assert status == 403 and "cannot create resource" in forbidden["message"], forbidden

    # What the daemon asks before acting on alice's command, answered by the base's people roles.
    kube = KubeClient.from_kubeconfig(str(bare.kubeconfig))
    try:
        reviews = AccessReviews(kube)
        ask = {"group": "delivery.rollout.dev", "resource": "rollouts", "namespace": "team-a", "name": "shop"}
        assert reviews.allowed("alice", ["oncall", "system:authenticated"], verb="approve", **ask)[0]
        assert reviews.allowed("alice", ["oncall", "system:authenticated"], verb="abort", **ask)[0]
        assert not reviews.allowed("victor", ["system:authenticated"], verb="approve", **ask)[0]
    finally:
        kube.close()
