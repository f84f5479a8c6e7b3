"""The base's RBAC on the real API server: applied from ``deploy/base`` as written, then asked with
SubjectAccessReviews what the daemon's ServiceAccount may and may not do, and what people bound to
``rollout-operator``, ``rollout-approver`` and ``rollout-viewer`` may do (the custom verbs the
daemon checks before it carries out a command); the built-in roles carry the aggregation labels the
people's roles rely on. The other base objects are validated by a server-side dry run with strict
field validation."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.kube.commands import POLICY_NAME, VERBS
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
    name: str = "",
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
                    "name": name,
                },
            },
        },
    )
    return bool(review["status"].get("allowed"))


MESH, GATEWAY, DELIVERY = "appmesh.k8s.aws", "gateway.networking.k8s.io", "delivery.rollout.dev"
LEASES, ADMISSION = "coordination.k8s.io", "admissionregistration.k8s.io"
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
    ("list", "rolloutcommands", DELIVERY, "", ""),
    ("watch", "rolloutcommands", DELIVERY, "", ""),
    ("get", "rolloutcommands", DELIVERY, "shop", ""),
    ("create", "rolloutcommands", DELIVERY, "shop", ""),
    ("delete", "rolloutcommands", DELIVERY, "shop", ""),
    ("patch", "rolloutcommands", DELIVERY, "shop", "status"),
    ("create", "subjectaccessreviews", "authorization.k8s.io", "", ""),
    ("create", "selfsubjectreviews", "authentication.k8s.io", "", ""),  # every authenticated user may
    ("get", "leases", LEASES, SYSTEM, ""),
    ("list", "leases", LEASES, SYSTEM, ""),
    ("watch", "leases", LEASES, SYSTEM, ""),
    ("create", "leases", LEASES, SYSTEM, ""),
    ("update", "leases", LEASES, SYSTEM, ""),
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
    ("update", "leases", LEASES, "shop", ""),
    ("list", "leases", LEASES, "", ""),
    ("delete", "leases", LEASES, SYSTEM, ""),
    ("patch", "leases", LEASES, SYSTEM, ""),
    ("update", "rolloutcommands", DELIVERY, "shop", ""),
    ("patch", "rolloutcommands", DELIVERY, "shop", ""),
    ("update", "rolloutcommands", DELIVERY, "shop", "status"),
    ("approve", "rollouts", DELIVERY, "shop", ""),  # people's verbs, not the daemon's
    ("abort", "rollouts", DELIVERY, "shop", ""),
    ("list", "validatingadmissionpolicies", ADMISSION, "", ""),
    ("create", "validatingadmissionpolicies", ADMISSION, "", ""),
    ("delete", "validatingadmissionpolicybindings", ADMISSION, "", ""),
    ("create", "tokenreviews", "authentication.k8s.io", "", ""),
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


def test_the_daemon_reads_only_the_admission_policy_it_checks(
    control_plane: ControlPlane, rbac: list[dict[str, Any]]
) -> None:
    for resource in ("validatingadmissionpolicies", "validatingadmissionpolicybindings"):
        assert allowed(control_plane, "get", resource, group=ADMISSION, name=POLICY_NAME)
        assert not allowed(control_plane, "get", resource, group=ADMISSION, name="someone-elses")
        for verb in ("update", "patch", "delete"):
            assert not allowed(control_plane, verb, resource, group=ADMISSION, name=POLICY_NAME)


def _bind(plane: ControlPlane, role: str, user: str) -> None:
    apply(plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ONCALL_NAMESPACE}})
    apply(
        plane,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{role}", "namespace": ONCALL_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


COMMAND_VERBS = sorted(set(VERBS.values()))
PEOPLE: dict[str, tuple[str, list[str]]] = {  # role: (user bound to it, the command verbs it grants)
    "rollout-operator": ("oncall", COMMAND_VERBS),
    "rollout-approver": ("releaser", ["approve"]),
    "rollout-viewer": ("reader", []),
}


@pytest.mark.parametrize("role", sorted(PEOPLE))
def test_people_may_give_the_commands_of_their_role_in_their_namespace_only(
    control_plane: ControlPlane, rbac: list[dict[str, Any]], role: str
) -> None:
    user, verbs = PEOPLE[role]
    _bind(control_plane, role, user)
    person: dict[str, Any] = {"user": user, "groups": ["system:authenticated"]}

    def may(verb: str, resource: str = "rollouts", namespace: str = ONCALL_NAMESPACE, **extra: Any) -> bool:
        return allowed(control_plane, verb, resource, group=DELIVERY, namespace=namespace, **person, **extra)

    for verb in COMMAND_VERBS:  # what the daemon asks (SubjectAccessReview) before it acts
        assert may(verb, name="shop") is (verb in verbs), verb
        assert not may(verb, namespace="shop", name="shop"), verb
    for verb in ("get", "list", "watch"):
        assert may(verb) and may(verb, "rolloutcommands")
    assert may("create", "rolloutcommands") is bool(verbs)
    assert not may("create", "rolloutcommands", namespace="shop")
    for verb in ("create", "update", "patch", "delete"):  # writing a Rollout is its author's right
        assert not may(verb), verb
    assert not may("patch", subresource="status")
    for verb in ("update", "patch", "delete"):  # a command is never edited nor withdrawn by a person
        assert not may(verb, "rolloutcommands"), verb
    assert not may("patch", "rolloutcommands", subresource="status")
    assert not allowed(control_plane, "patch", "gatewayroutes", group=MESH, namespace=ONCALL_NAMESPACE, **person)


def test_the_built_in_roles_aggregate_the_way_the_people_roles_rely_on(control_plane: ControlPlane) -> None:
    """rollout-viewer is labelled aggregate-to-view only; it reaches edit and admin because the
    built-in view role is aggregated into edit, and edit into admin (the API server's bootstrap
    roles; the aggregation itself is done by kube-controller-manager, which these tests do not run)."""
    roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    view, edit, admin = (control_plane.request("GET", f"{roles}/{name}") for name in ("view", "edit", "admin"))
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    for role, name in ((view, "view"), (edit, "edit"), (admin, "admin")):
        selectors = [s["matchLabels"] for s in role["aggregationRule"]["clusterRoleSelectors"]]
        assert {f"rbac.authorization.k8s.io/aggregate-to-{name}": "true"} in selectors


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
