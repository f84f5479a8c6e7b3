"""Rollout objects in the API server: read them, write their status conditionally, apply policy
files with server-side apply, and carry operator commands.

Owns the wire layout of a Rollout's ``status`` and of the commands annotation. It makes one
attempt per call (retries live in ``rollout.runtime.retrying``) and decides nothing.

Status layout (declared in full in the CRD so nothing is pruned)::

    status:
      observedGeneration, phase, step (1-based), canaryWeight, stableWeight, message, revision,
      conditions: [{type, status, reason, message, lastTransitionTime, observedGeneration}],
      state: RolloutState.to_dict()       # everything the engine needs to resume

Operator commands live in the annotation ``delivery.rollout.dev/commands`` as a JSON list of
``{id, kind, by, at, reason}``; the daemon records handled ids in the status and prunes them.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollout.core.states import Command, CommandKind, RolloutState
from rollout.errors import KubeError
from rollout.kube.client import KubeClient, Resource

ROLLOUTS = Resource("delivery.rollout.dev", "v1alpha1", "rollouts", "Rollout")
COMMANDS_ANNOTATION = "delivery.rollout.dev/commands"
FIELD_MANAGER = "rollout-daemon"
APPLY_PATCH = "application/apply-patch+yaml"
_MAX_COMMANDS = 20


@dataclass(frozen=True)
class RolloutObject:
    """One Rollout as read from the API server."""

    raw: dict[str, Any]

    @property
    def namespace(self) -> str:
        return str(self.raw["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.raw["metadata"]["name"])

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def resource_version(self) -> str:
        return str(self.raw["metadata"].get("resourceVersion", ""))

    @property
    def generation(self) -> int:
        return int(self.raw["metadata"].get("generation", 0))

    @property
    def status(self) -> Mapping[str, Any]:
        status = self.raw.get("status")
        return status if isinstance(status, Mapping) else {}

    def state(self) -> RolloutState:
        """The engine state persisted in the status; a fresh state when there is none (or it is unreadable)."""
        data = self.status.get("state")
        if not isinstance(data, Mapping):
            return RolloutState()
        try:
            return RolloutState.from_dict(data)
        except (KeyError, TypeError, ValueError):
            return RolloutState()

    def commands(self) -> tuple[Command, ...]:
        return parse_commands(self.raw.get("metadata", {}).get("annotations", {}).get(COMMANDS_ANNOTATION))


def parse_commands(text: object) -> tuple[Command, ...]:
    """Commands from the annotation; malformed entries are skipped (they cannot be acted on)."""
    if not isinstance(text, str) or not text:
        return ()
    try:
        items = json.loads(text)
    except ValueError:
        return ()
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(
                Command(
                    kind=CommandKind(item["kind"]),
                    by=str(item["by"]),
                    at=datetime.fromisoformat(item["at"]),
                    id=str(item["id"]),
                    reason=str(item.get("reason", "")),
                    ref=str(item.get("ref", "")),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out)


def command_json(command: Command) -> dict[str, str]:
    return {
        "id": command.id,
        "kind": command.kind.value,
        "by": command.by,
        "at": command.at.isoformat(),
        "reason": command.reason,
        **({"ref": command.ref} if command.ref else {}),
    }


def status_document(
    obj: RolloutObject, state: RolloutState, *, conditions: Sequence[Mapping[str, Any]], steps: int | None = None
) -> dict[str, Any]:
    """The whole ``status`` the daemon writes for ``state`` (``step`` is 1-based, at most ``steps``)."""
    step = state.step + 1 if state.run_started_at else 0
    return {
        "observedGeneration": obj.generation,
        "phase": state.phase.value,
        "step": min(step, steps) if steps else step,
        "canaryWeight": state.weights.canary,
        "stableWeight": state.weights.stable,
        "message": state.message,
        "revision": state.revision,
        "conditions": [dict(c) for c in conditions],
        "state": json_safe(state.to_dict()),
    }


def json_safe(value: Any, *, clamp: bool = False) -> Any:
    """``value`` with every non-finite float replaced, since JSON (and so the API server) has none.

    A verdict's infinite ratio (canary errors, none on stable) becomes null, which the CRD documents
    as "unmeasured" (the check's ``detail`` still says ``inf``); a judge accumulator is clamped to the
    largest float instead, so the evidence it carries survives a restart with the same meaning.
    """
    if isinstance(value, float) and not math.isfinite(value):
        if not clamp:
            return None
        return 0.0 if math.isnan(value) else math.copysign(sys.float_info.max, value)
    if isinstance(value, Mapping):
        return {k: json_safe(v, clamp=clamp or k == "accumulators") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, clamp=clamp) for v in value]
    return value


class RolloutObjects:
    """Rollout objects through one ``KubeClient``."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    def list(self, namespaces: Sequence[str] | None) -> list[RolloutObject]:
        """Rollouts in ``namespaces`` (every namespace when None or empty)."""
        if not namespaces:
            return [RolloutObject(o) for o in self.client.list(ROLLOUTS)]
        return [RolloutObject(o) for ns in namespaces for o in self.client.list(ROLLOUTS, ns)]

    def get(self, namespace: str, name: str) -> RolloutObject:
        return RolloutObject(self.client.get(ROLLOUTS, namespace, name))

    def write_status(self, obj: RolloutObject, status: Mapping[str, Any]) -> RolloutObject:
        """Replace the status, only if the object is still at the version read (else ``KubeConflict``)."""
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": obj.resource_version},
            {"op": "add", "path": "/status", "value": dict(status)},
        ]
        return RolloutObject(self.client.json_patch(ROLLOUTS, obj.namespace, obj.name, ops, subresource="status"))

    def add_command(self, namespace: str, name: str, command: Command) -> RolloutObject:
        """Append an operator command to the annotation, conditionally on the version read."""
        obj = self.get(namespace, name)
        annotations = obj.raw.get("metadata", {}).get("annotations") or {}
        current = [command_json(c) for c in parse_commands(annotations.get(COMMANDS_ANNOTATION))]
        value = json.dumps([*current, command_json(command)][-_MAX_COMMANDS:], separators=(",", ":"))
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion", "value": obj.resource_version}]
        if not annotations:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {COMMANDS_ANNOTATION: value}})
        else:
            ops.append({"op": "add", "path": "/metadata/annotations/" + _escape(COMMANDS_ANNOTATION), "value": value})
        return RolloutObject(self.client.json_patch(ROLLOUTS, namespace, name, ops))

    def prune_commands(self, obj: RolloutObject, handled: Sequence[str]) -> None:
        """Drop handled commands from the annotation (conditional; losing a race is harmless)."""
        remaining = [command_json(c) for c in obj.commands() if c.id not in set(handled)]
        if len(remaining) == len(obj.commands()):
            return
        path = "/metadata/annotations/" + _escape(COMMANDS_ANNOTATION)
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion", "value": obj.resource_version}]
        if remaining:
            ops.append({"op": "replace", "path": path, "value": json.dumps(remaining, separators=(",", ":"))})
        else:
            ops.append({"op": "remove", "path": path})
        self.client.json_patch(ROLLOUTS, obj.namespace, obj.name, ops)

    def apply(self, document: Mapping[str, Any]) -> RolloutObject:
        """Server-side apply a policy document as a Rollout (field manager ``rollout-daemon``)."""
        metadata = document.get("metadata", {})
        namespace, name = str(metadata.get("namespace", "default")), str(metadata["name"])
        body = {
            "apiVersion": ROLLOUTS.api_version,
            "kind": ROLLOUTS.kind,
            "metadata": {k: v for k, v in metadata.items() if k in ("name", "namespace", "labels", "annotations")}
            | {"namespace": namespace},
            "spec": document["spec"],
        }
        api = self.client.custom_api
        result = self.client.call(
            "apply",
            f"{ROLLOUTS.name} {namespace}/{name}",
            lambda: api.patch_namespaced_custom_object(
                ROLLOUTS.group,
                ROLLOUTS.version,
                namespace,
                ROLLOUTS.plural,
                name,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                field_validation="Strict",
                _content_type=APPLY_PATCH,
                _request_timeout=self.client.timeout,
            ),
        )
        if not isinstance(result, dict):
            raise KubeError(f"unexpected answer applying {ROLLOUTS.name} {namespace}/{name}")
        return RolloutObject(result)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
