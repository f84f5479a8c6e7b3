"""``RolloutCommand`` objects: operator commands as small, immutable API objects whose author the
API server vouches for.

Owns the command wire format, its CRD, the admission policy that binds ``spec.by`` to the
authenticated user, and reading / creating / acknowledging commands. A command is created by
the CLI (``rollout approve ...``) or, for a verified Slack click, by the daemon's own
ServiceAccount; the daemon records what became of it in ``status`` (``Accepted``, ``Ignored`` or
``Refused`` with the reason), which the CLI waits for.

Why objects and not an annotation: a ``ValidatingAdmissionPolicy`` (CEL) can compare
``object.spec.by`` with ``request.userInfo.username`` on a structured object, and cannot look
inside JSON in an annotation. The CRD keeps ``spec`` immutable (a CEL transition rule); the policy
(``admission_policy()``) refuses a ``by``/``groups`` that is not the requester's and Slack fields
from anyone but the daemon. ``metadata.uid`` is the command's id and ``creationTimestamp`` (set by
the server) its time, so neither can be forged nor malformed. One attempt per call; no decisions.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import yaml

from rollout.core.states import Command, CommandKind, CommandResult
from rollout.kube.resources import Resource

if TYPE_CHECKING:
    from rollout.kube.client import KubeClient
from rollout.kube.rollouts import ROLLOUTS

ROLLOUT_COMMANDS = Resource(ROLLOUTS.group, ROLLOUTS.version, "rolloutcommands", "RolloutCommand")
POLICY_NAME = "rollout-commands"
VERBS = {
    CommandKind.APPROVE: "approve",
    CommandKind.ABORT: "abort",
    CommandKind.PROMOTE: "promote",
    CommandKind.PROMOTE_FULL: "promote",
    CommandKind.PAUSE: "pause",
    CommandKind.RESUME: "resume",
    CommandKind.RETRY: "retry",
}
"""The RBAC verb on ``rollouts`` a person needs for each command (checked by SubjectAccessReview)."""


@dataclass(frozen=True)
class CommandObject:
    """One RolloutCommand as read from the API server."""

    raw: Mapping[str, Any]

    @property
    def meta(self) -> Mapping[str, Any]:
        meta = self.raw.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def rollout(self) -> str:
        spec = self.raw.get("spec")
        return str(spec.get("rollout", "")) if isinstance(spec, Mapping) else ""

    @property
    def handled(self) -> bool:
        status = self.raw.get("status")
        return isinstance(status, Mapping) and bool(status.get("phase"))

    @property
    def groups(self) -> tuple[str, ...]:
        spec = self.raw.get("spec")
        groups = spec.get("groups") if isinstance(spec, Mapping) else None
        return tuple(str(g) for g in groups) if isinstance(groups, list) else ()

    def parse(self) -> Command | str:
        """The command, or one sentence saying why it cannot be one (it is then refused, not fatal)."""
        spec = self.raw.get("spec")
        uid, created = self.meta.get("uid"), self.meta.get("creationTimestamp")
        if not isinstance(spec, Mapping):
            return "it has no spec"
        if not isinstance(uid, str) or not uid or not isinstance(created, str):
            return "it has no uid or creation time"
        try:
            at = datetime.fromisoformat(created.replace("Z", "+00:00"))
            kind = CommandKind(str(spec.get("command", "")))
        except ValueError as e:
            return f"it is malformed: {str(e)[:200]}"
        if at.tzinfo is None:
            return "its creation time has no time zone"
        by = spec.get("by")
        if not isinstance(by, str) or not by:
            return "it names nobody in spec.by"
        return Command(
            kind=kind,
            by=by,
            at=at,
            id=uid,
            reason=_text(spec.get("reason"), 1024),
            ref=_text(spec.get("ref"), 256),
            slack_user=_text(spec.get("slackUser"), 64),
            slack_groups=_groups(spec.get("slackGroups")),
        )


def _text(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _groups(value: object) -> tuple[str, ...]:
    return tuple(str(g)[:32] for g in value[:100] if isinstance(g, str)) if isinstance(value, list) else ()


def command_body(
    namespace: str,
    rollout: str,
    kind: CommandKind,
    *,
    by: str,
    groups: Sequence[str] = (),
    reason: str = "",
    ref: str = "",
    slack_user: str = "",
    slack_groups: Sequence[str] = (),
    rollout_uid: str | None = None,
) -> dict[str, Any]:
    """A new RolloutCommand for ``rollout`` (owned by it when its uid is known, so it goes with it)."""
    prefix = f"{rollout[:200]}-{VERBS[kind]}-"
    metadata: dict[str, Any] = {"generateName": prefix, "namespace": namespace}
    if rollout_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": ROLLOUTS.api_version, "kind": ROLLOUTS.kind, "name": rollout, "uid": rollout_uid}
        ]
    spec: dict[str, Any] = {"rollout": rollout, "command": kind.value, "by": by}
    if groups:
        spec["groups"] = list(groups)
    for key, value in (("reason", reason[:1024]), ("ref", ref), ("slackUser", slack_user)):
        if value:
            spec[key] = value
    if slack_groups:
        spec["slackGroups"] = list(slack_groups)
    return {
        "apiVersion": ROLLOUT_COMMANDS.api_version,
        "kind": ROLLOUT_COMMANDS.kind,
        "metadata": metadata,
        "spec": spec,
    }


class CommandObjects:
    """RolloutCommands through one ``KubeClient``."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    def list(self, namespaces: Sequence[str] | None) -> list[CommandObject]:
        if not namespaces:
            return [CommandObject(o) for o in self.client.list(ROLLOUT_COMMANDS)]
        return [CommandObject(o) for ns in namespaces for o in self.client.list(ROLLOUT_COMMANDS, ns)]

    def get(self, namespace: str, name: str) -> CommandObject:
        return CommandObject(self.client.get(ROLLOUT_COMMANDS, namespace, name))

    def create(self, body: Mapping[str, Any]) -> CommandObject:
        return CommandObject(self.client.create(ROLLOUT_COMMANDS, str(body["metadata"]["namespace"]), body))

    def acknowledge(self, obj: CommandObject, result: CommandResult, *, by: str, now: datetime) -> CommandObject:
        """Record what became of the command (``status``), once; returns the command as written."""
        phase = "Accepted" if result.accepted else ("Refused" if result.message.startswith("refused") else "Ignored")
        status = {
            "phase": phase,
            "message": result.message[:1024],
            "handledAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "handledBy": by[:253],
        }
        ops = [{"op": "add", "path": "/status", "value": status}]
        return CommandObject(
            self.client.json_patch(ROLLOUT_COMMANDS, obj.namespace, obj.name, ops, subresource="status")
        )

    def delete(self, obj: CommandObject) -> None:
        self.client.delete(ROLLOUT_COMMANDS, obj.namespace, obj.name)


# --- manifests --------------------------------------------------------------------------------


def _str(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def crd_manifest() -> dict[str, Any]:
    """The ``rolloutcommands.delivery.rollout.dev`` CustomResourceDefinition."""
    spec = {
        "type": "object",
        "description": "what is asked, by whom (spec is immutable)",
        "required": ["rollout", "command", "by"],
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "a command cannot be changed"}],
        "properties": {
            "rollout": _str("the Rollout, in this namespace", maxLength=253, minLength=1),
            "command": _str("what to do", enum=sorted({k.value for k in CommandKind})),
            "by": _str("who asks: must be the authenticated user creating the command", maxLength=512, minLength=1),
            "groups": {
                "type": "array",
                "maxItems": 64,
                "items": {"type": "string", "maxLength": 512},
                "description": "the groups of that user, as authenticated",
            },
            "reason": _str("why (shown in status, Events and Slack)", maxLength=1024),
            "ref": _str("the approval request a Slack click answers (daemon only)", maxLength=256),
            "slackUser": _str("the Slack user who clicked (daemon only)", maxLength=64, pattern="^[UW][A-Z0-9]{2,}$"),
            "slackGroups": {
                "type": "array",
                "maxItems": 100,
                "items": _str("a Slack user group ID", maxLength=32, pattern="^S[A-Z0-9]{2,}$"),
                "description": "the policy's approver groups the Slack user was in when clicking (daemon only)",
            },
        },
    }
    status = {
        "type": "object",
        "description": "what the daemon did with the command",
        "properties": {
            "phase": _str("Accepted, Ignored or Refused", enum=["Accepted", "Ignored", "Refused"]),
            "message": _str("the daemon's reason, one sentence", maxLength=1024),
            "handledAt": _str("RFC 3339 time", format="date-time"),
            "handledBy": _str("the daemon replica that handled it", maxLength=253),
        },
    }
    columns = [
        {"name": "Rollout", "type": "string", "jsonPath": ".spec.rollout"},
        {"name": "Command", "type": "string", "jsonPath": ".spec.command"},
        {"name": "By", "type": "string", "jsonPath": ".spec.by"},
        {"name": "Result", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": ROLLOUT_COMMANDS.name, "labels": {"app.kubernetes.io/name": "rollout"}},
        "spec": {
            "group": ROLLOUT_COMMANDS.group,
            "scope": "Namespaced",
            "names": {
                "kind": ROLLOUT_COMMANDS.kind,
                "listKind": f"{ROLLOUT_COMMANDS.kind}List",
                "plural": ROLLOUT_COMMANDS.plural,
                "singular": "rolloutcommand",
                "categories": ["rollout"],
            },
            "versions": [
                {
                    "name": ROLLOUT_COMMANDS.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "An operator command for a Rollout (approve, abort, promote, ...).",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def admission_policy(daemon: str = "system:serviceaccount:rollout-system:rollout") -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy (and its binding) that makes ``spec.by`` trustworthy.

    ``daemon`` is the daemon's ServiceAccount username: the only requester allowed to record a
    Slack click (``slackUser``/``ref``/``slackGroups``), always with its own name in ``spec.by``.
    """
    user = "request.userInfo.username"
    groups = "(has(request.userInfo.groups) ? request.userInfo.groups : [])"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/name": "rollout"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [ROLLOUT_COMMANDS.group],
                        "apiVersions": ["*"],
                        "operations": ["CREATE"],
                        "resources": [ROLLOUT_COMMANDS.plural],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"object.spec.by == {user}",
                    "messageExpression": f"'spec.by must be the requesting user ' + {user}",
                    "reason": "Forbidden",
                },
                {
                    "expression": f"(has(object.spec.groups) ? object.spec.groups : []) == {groups}",
                    "message": "spec.groups must be the requesting user's groups",
                    "reason": "Forbidden",
                },
                {
                    "expression": "!(has(object.spec.slackUser) || has(object.spec.ref) "
                    f"|| has(object.spec.slackGroups)) || {user} == '{daemon}'",
                    "message": "only the rollout daemon records Slack clicks",
                    "reason": "Forbidden",
                },
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/name": "rollout"}},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }
    return [policy, binding]


HEADER = (
    "# Generated by `python -m rollout.kube.commands {what}` from rollout/kube/commands.py.\n"
    "# Do not edit: regenerate (tests/deploy fails when this file is stale).\n"
)


def render(what: str) -> str:
    """``crd``: the RolloutCommand CRD; ``policy``: the admission policy and its binding (YAML)."""
    if what == "crd":
        docs: list[dict[str, Any]] = [crd_manifest()]
    elif what == "policy":
        docs = admission_policy()
    else:
        raise ValueError(f"render what? 'crd' or 'policy', not {what!r}")
    body = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=100, allow_unicode=True) for d in docs)
    return HEADER.format(what=what) + body


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(render(args[0] if args else "crd"))


if __name__ == "__main__":
    main()
