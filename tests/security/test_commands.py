"""Commands whose author the API server vouches for, on the real kube-apiserver: the admission
policy binds spec.by and spec.groups to the requester, only the daemon records Slack clicks, a
command cannot be edited, and RBAC verbs decide who may approve (SubjectAccessReview)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.core.states import CommandKind
from rollout.kube.access import AccessReviews
from rollout.kube.client import KubeClient
from rollout.kube.commands import ROLLOUT_COMMANDS, admission_policy, command_body
from rollout.kube.commands import crd_manifest as commands_crd
from rollout.kube.crd import crd_manifest as rollouts_crd
from tests.harness.kube import ControlPlane

pytestmark = pytest.mark.kube
DAEMON = "system:serviceaccount:rollout-system:rollout"
PATH = f"/apis/{ROLLOUT_COMMANDS.group}/{ROLLOUT_COMMANDS.version}/namespaces/team-a/{ROLLOUT_COMMANDS.plural}"


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(name="rollout-commands") as cp:
        for crd in (rollouts_crd(), commands_crd()):
            cp.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        for ns in ("team-a", "rollout-system"):
            cp.create_namespace(ns)
        for obj in admission_policy(DAEMON):
            plural = (
                "validatingadmissionpolicies"
                if obj["kind"] == "ValidatingAdmissionPolicy"
                else ("validatingadmissionpolicybindings")
            )
            cp.request("POST", f"/apis/admissionregistration.k8s.io/v1/{plural}", obj)
        _grant(cp)
        _wait_for_crd(cp)
        yield cp


def _grant(cp: ControlPlane) -> None:
    """alice may create commands and approve in team-a; bob may only create commands."""
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a"
    roles = {
        "approver": [
            {"apiGroups": ["delivery.rollout.dev"], "resources": ["rolloutcommands"], "verbs": ["create", "get"]},
            {"apiGroups": ["delivery.rollout.dev"], "resources": ["rollouts"], "verbs": ["approve"]},
        ],
        "commander": [
            {"apiGroups": ["delivery.rollout.dev"], "resources": ["rolloutcommands"], "verbs": ["create", "get"]}
        ],
    }
    for user, role in (("alice", "approver"), ("bob", "commander"), (DAEMON, "commander")):
        if not any(r == role for r in _existing_roles(cp)):
            cp.request(
                "POST",
                f"{rbac}/roles",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": role},
                    "rules": roles[role],
                },
            )
        cp.request(
            "POST",
            f"{rbac}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{role}-{user.replace(':', '-')}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
            },
        )


def _existing_roles(cp: ControlPlane) -> list[str]:
    items = cp.request("GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles").get("items", [])
    return [str(r["metadata"]["name"]) for r in items]


def _wait_for_crd(cp: ControlPlane) -> None:
    deadline = time.monotonic() + 30
    while cp._request("GET", PATH)[0] != 200:
        assert time.monotonic() < deadline, "rolloutcommands not served"
        time.sleep(0.1)


def _create_as(cp: ControlPlane, user: str, group: str | None, **spec: Any) -> tuple[int, dict[str, Any]]:
    status, review = cp.request_as(
        user,
        group,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert status == 201, review
    groups = review["status"]["userInfo"].get("groups", [])
    body = command_body(
        "team-a",
        "shop",
        CommandKind(spec.pop("command", "approve")),
        by=spec.pop("by", user),
        groups=spec.pop("groups", groups),
        **spec,
    )
    return cp.request_as(user, group, "POST", PATH, body)


def test_a_command_by_its_own_author_is_admitted(plane: ControlPlane) -> None:
    status, created = _create_as(plane, "alice", "oncall")
    assert status == 201, created
    assert created["spec"]["by"] == "alice" and "oncall" in created["spec"]["groups"]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"by": "carol"}, "spec.by must be the requesting user"),
        ({"groups": ["system:masters"]}, "spec.groups must be the requesting user's groups"),
        ({"slack_user": "U0APPROVER", "ref": "approval-x-1"}, "only the rollout daemon records Slack clicks"),
    ],
)
def test_a_forged_command_is_refused_by_admission(plane: ControlPlane, spec: dict[str, Any], says: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        status, answer = _create_as(plane, "bob", None, **spec)
        if status != 201 or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # the policy is not enforced yet: retry until it is
    assert status in (403, 422), answer
    assert says in answer.get("message", ""), answer


def test_the_daemon_may_record_a_slack_click(plane: ControlPlane) -> None:
    status, created = _create_as(plane, DAEMON, None, slack_user="U0APPROVER", ref="approval-x-1")
    assert status == 201, created


def test_a_command_cannot_be_edited(plane: ControlPlane) -> None:
    status, created = _create_as(plane, "alice", None)
    assert status == 201
    name = created["metadata"]["name"]
    patch = [{"op": "replace", "path": "/spec/command", "value": "abort"}]
    code, raw = plane._request("PATCH", f"{PATH}/{name}", patch, content_type="application/json-patch+json")
    assert code == 422 and b"a command cannot be changed" in raw


def test_rbac_verbs_decide_who_may_approve(plane: ControlPlane) -> None:
    kube = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    reviews = AccessReviews(kube)
    ask = {
        "verb": "approve",
        "group": "delivery.rollout.dev",
        "resource": "rollouts",
        "namespace": "team-a",
        "name": "shop",
    }
    assert reviews.allowed("alice", ["system:authenticated"], **ask)[0]
    assert not reviews.allowed("bob", ["system:authenticated"], **ask)[0]
    assert not reviews.allowed("alice", ["system:authenticated"], **{**ask, "namespace": "team-b"})[0]
    kube.close()
