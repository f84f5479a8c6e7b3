"""Who is asking, and may they: SelfSubjectReview (the CLI's own identity) and SubjectAccessReview
(the daemon asking the API server whether a command's author holds the RBAC verb it needs).

Owns the two review calls and their translation into plain answers; one attempt per call. It
decides nothing about rollouts: the reconciler turns a "no" into a refused command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from rollout.errors import KubeNotFound
from rollout.kube.client import KubeClient


@dataclass(frozen=True)
class Identity:
    """A user as the API server authenticated it."""

    username: str
    groups: tuple[str, ...] = ()


def whoami(client: KubeClient) -> Identity:
    """The caller's identity (``authentication.k8s.io/v1`` SelfSubjectReview)."""
    api = k8s.AuthenticationV1Api(client.api_client)
    body: Any = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    review = client.call(
        "create",
        "selfsubjectreviews.authentication.k8s.io",
        lambda: api.create_self_subject_review(body, _request_timeout=client.timeout),
    )
    info = review.status.user_info if review.status else None
    if info is None or not info.username:
        return Identity("unknown")
    return Identity(str(info.username), tuple(str(g) for g in info.groups or ()))


class AccessReviews:
    """``authorization.k8s.io/v1`` SubjectAccessReviews through one client."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._api = k8s.AuthorizationV1Api(client.api_client)

    def allowed(
        self, user: str, groups: Sequence[str], *, verb: str, group: str, resource: str, namespace: str, name: str
    ) -> tuple[bool, str]:
        """Whether ``user`` (with ``groups``) may ``verb`` the object, and the authorizer's reason."""
        body: Any = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": list(groups),
                "resourceAttributes": {
                    "group": group,
                    "resource": resource,
                    "verb": verb,
                    "namespace": namespace,
                    "name": name,
                },
            },
        }
        review = self.client.call(
            "create",
            "subjectaccessreviews.authorization.k8s.io",
            lambda: self._api.create_subject_access_review(body, _request_timeout=self.client.timeout),
        )
        status = review.status
        return bool(status and status.allowed), str((status.reason if status else "") or "")


def admission_policy_installed(client: KubeClient, name: str) -> bool:
    """Whether the ValidatingAdmissionPolicy ``name`` and a binding of the same name exist (a 404 on
    either: not installed; any other failure is a ``KubeError``)."""
    api = k8s.AdmissionregistrationV1Api(client.api_client)
    try:
        client.call(
            "get",
            f"validatingadmissionpolicies.admissionregistration.k8s.io {name}",
            lambda: api.read_validating_admission_policy(name, _request_timeout=client.timeout),
        )
        client.call(
            "get",
            f"validatingadmissionpolicybindings.admissionregistration.k8s.io {name}",
            lambda: api.read_validating_admission_policy_binding(name, _request_timeout=client.timeout),
        )
    except KubeNotFound:
        return False
    return True
