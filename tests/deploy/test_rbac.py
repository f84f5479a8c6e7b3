"""The base's RBAC on the real API server: applied from ``deploy/base`` as written, then asked with
SubjectAccessReviews what the daemon's ServiceAccount (and an on-call person bound to
``rollout-operator``) may and may not do. The other base objects are validated by a server-side
dry run with strict field validation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.manifests import BASE, base_objects, documents, find
from tests.harness.kube import ControlPlane

pytestmark = pytest.mark.kube

SYSTEM = "rollout-system"
DAEMON = f"system:serviceaccount:{SYSTEM}:rollout"
DAEMON_GROUPS = ["system:serviceaccounts", f"system:serviceaccounts:{SYSTEM}", "system:authenticated"]
ONCALL_NAMESPACE = "shop-rbac"
_PATHS = {
    "Namespace": "/api/v1/namespaces",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
}
_RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def _collection(obj: dict[str, Any]) -> str:
    return _PATHS[obj["kind"]].format(ns=obj["metadata"].get("namespace", ""))


def apply(plane: ControlPlane, obj: dict[str, Any]) -> None:
    """Create ``obj``, or replace the stored one with it (the session's API server is shared)."""
    created = plane.request("POST", _collection(obj), obj, ok=(201, 409))
    if created.get("kind") == "Status":  # 409: it exists
        path = f"{_collection(obj)}/{obj['metadata']['name']}"
        current = plane.request("GET", path)
        replacement = {
            **obj,
            "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
        }
        plane.request("PUT", path, replacement)


@pytest.fixture(scope="module")
def rbac(control_plane: ControlPlane) -> list[dict[str, Any]]:
    objects = base_objects()
    apply(control_plane, find(objects, "Namespace", SYSTEM))
    applied = [o for o in objects if o["kind"] in _RBAC_KINDS]
    for obj in applied:
        apply(control_plane, obj)
    return applied


def allowed(
    plane: ControlPlane,
    verb: str,
    resource: str,
    *,
    group: str = "",
    namespace: str = "",
    subresource: str = "",
    user: str = DAEMON,
    groups: list[str] | None = None,
) -> bool:
    review = plane.request(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": DAEMON_GROUPS if groups is None else groups,
                "resourceAttributes": {
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "namespace": namespace,
                    "subresource": subresource,
                },
            },
        },
    )
    return bool(review["status"].get("allowed"))


MESH, GATEWAY, DELIVERY = "appmesh.k8s.aws", "gateway.networking.k8s.io", "delivery.rollout.dev"
DAEMON_MAY = [
    ("patch", "gatewayroutes", MESH, "shop", ""),
    ("get", "gatewayroutes", MESH, "shop", ""),
    ("watch", "gatewayroutes", MESH, "", ""),
    ("create", "gatewayroutes", MESH, "shop", ""),  # an A/B step's companion GatewayRoute
    ("delete", "gatewayroutes", MESH, "shop", ""),
    ("patch", "virtualrouters", MESH, "shop", ""),
    ("list", "virtualrouters", MESH, "", ""),
    ("patch", "httproutes", GATEWAY, "web", ""),
    ("watch", "httproutes", GATEWAY, "web", ""),
    ("get", "rollouts", DELIVERY, "", ""),
    ("watch", "rollouts", DELIVERY, "", ""),
    ("create", "rollouts", DELIVERY, "shop", ""),
    ("patch", "rollouts", DELIVERY, "shop", ""),
    ("patch", "rollouts", DELIVERY, "shop", "status"),
    ("update", "rollouts", DELIVERY, "shop", "status"),
    ("create", "events", "", "shop", ""),
    ("patch", "events", "", "shop", ""),
    ("create", "events", "events.k8s.io", "shop", ""),
    ("get", "leases", "coordination.k8s.io", SYSTEM, ""),
    ("create", "leases", "coordination.k8s.io", SYSTEM, ""),
    ("update", "leases", "coordination.k8s.io", SYSTEM, ""),
]
DAEMON_MAY_NOT = [
    ("update", "gatewayroutes", MESH, "shop", ""),
    ("create", "virtualrouters", MESH, "shop", ""),
    ("create", "httproutes", GATEWAY, "web", ""),
    ("delete", "httproutes", GATEWAY, "web", ""),
    ("delete", "virtualrouters", MESH, "shop", ""),
    ("patch", "virtualservices", MESH, "shop", ""),
    ("get", "secrets", "", SYSTEM, ""),
    ("list", "secrets", "", "", ""),
    ("get", "configmaps", "", SYSTEM, ""),
    ("patch", "deployments", "apps", "shop", ""),
    ("patch", "deployments", "apps", SYSTEM, ""),
    ("delete", "rollouts", DELIVERY, "shop", ""),
    ("update", "rollouts", DELIVERY, "shop", ""),
    ("update", "leases", "coordination.k8s.io", "shop", ""),
    ("delete", "leases", "coordination.k8s.io", SYSTEM, ""),
    ("list", "events", "", "shop", ""),
    ("create", "pods", "", "shop", ""),
    ("escalate", "clusterroles", "rbac.authorization.k8s.io", "", ""),
]


def _id(case: tuple[str, str, str, str, str]) -> str:
    verb, resource, _, namespace, sub = case
    return f"{verb}-{resource}{'/' + sub if sub else ''}@{namespace or 'all'}"


@pytest.mark.parametrize("case", DAEMON_MAY, ids=[_id(c) for c in DAEMON_MAY])
def test_the_daemon_may(
    control_plane: ControlPlane, rbac: list[dict[str, Any]], case: tuple[str, str, str, str, str]
) -> None:
    verb, resource, group, namespace, sub = case
    assert allowed(control_plane, verb, resource, group=group, namespace=namespace, subresource=sub)


@pytest.mark.parametrize("case", DAEMON_MAY_NOT, ids=[_id(c) for c in DAEMON_MAY_NOT])
def test_the_daemon_may_not(
    control_plane: ControlPlane, rbac: list[dict[str, Any]], case: tuple[str, str, str, str, str]
) -> None:
    verb, resource, group, namespace, sub = case
    assert not allowed(control_plane, verb, resource, group=group, namespace=namespace, subresource=sub)


def test_another_service_account_gets_nothing(control_plane: ControlPlane, rbac: list[dict[str, Any]]) -> None:
    other = "system:serviceaccount:default:builder"
    groups = ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
    assert not allowed(control_plane, "patch", "gatewayroutes", group=MESH, namespace="shop", user=other, groups=groups)
    assert not allowed(
        control_plane, "update", "leases", group="coordination.k8s.io", namespace=SYSTEM, user=other, groups=groups
    )


def test_oncall_bound_to_rollout_operator_may_steer_rollouts_in_their_namespace_only(
    control_plane: ControlPlane, rbac: list[dict[str, Any]]
) -> None:
    apply(control_plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ONCALL_NAMESPACE}})
    apply(
        control_plane,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "oncall-rollouts", "namespace": ONCALL_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "rollout-operator"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "oncall"}],
        },
    )
    person: dict[str, Any] = {"user": "oncall", "groups": ["system:authenticated"]}
    for verb in ("get", "list", "watch", "patch"):
        assert allowed(control_plane, verb, "rollouts", group=DELIVERY, namespace=ONCALL_NAMESPACE, **person)
    assert not allowed(control_plane, "patch", "rollouts", group=DELIVERY, namespace="shop", **person)
    assert not allowed(control_plane, "delete", "rollouts", group=DELIVERY, namespace=ONCALL_NAMESPACE, **person)
    assert not allowed(
        control_plane, "patch", "rollouts", group=DELIVERY, namespace=ONCALL_NAMESPACE, subresource="status", **person
    )
    assert not allowed(control_plane, "patch", "gatewayroutes", group=MESH, namespace=ONCALL_NAMESPACE, **person)


def test_the_workload_objects_pass_a_strict_server_side_dry_run(
    control_plane: ControlPlane, rbac: list[dict[str, Any]]
) -> None:
    kinds = ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy")
    workload = [o for o in base_objects() if o["kind"] in kinds]
    assert sorted({o["kind"] for o in workload}) == sorted(kinds)
    for obj in workload:
        stored = control_plane.request("POST", f"{_collection(obj)}?dryRun=All&fieldValidation=Strict", obj)
        assert stored["metadata"]["name"] == obj["metadata"]["name"]
    # The dry run stored nothing.
    missing = control_plane.request("GET", f"/apis/apps/v1/namespaces/{SYSTEM}/deployments/rollout", ok=(404,))
    assert missing["reason"] == "NotFound"


def test_a_strict_dry_run_does_catch_a_typo(control_plane: ControlPlane, rbac: list[dict[str, Any]]) -> None:
    deployment = find(documents(BASE / "deployment.yaml"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    refused = control_plane.request(
        "POST", f"{_collection(deployment)}?dryRun=All&fieldValidation=Strict", deployment, ok=(400, 422)
    )
    assert "readinessProbes" in refused["message"]
