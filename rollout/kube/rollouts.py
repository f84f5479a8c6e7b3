"""Rollout objects in the API server: read them, write their status conditionally, apply policy
files with server-side apply.

Owns the wire layout of a Rollout's ``status``. It makes one attempt per call (retries live in
``rollout.runtime.retrying``) and decides nothing.

Status layout (declared in full in the CRD so nothing is pruned)::

    status:
      observedGeneration, phase (Invalid while the spec does not validate), step (1-based), steps,
      canaryWeight, stableWeight (what the route carries, read back), desiredCanaryWeight,
      message, verdict (one line), revision,
      conditions: [{type, status, reason, message, lastTransitionTime, observedGeneration}],
      state: the engine's RolloutState (rollout.core.persisting), everything it needs to resume

Operator commands are separate ``RolloutCommand`` objects (``rollout.kube.commands``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollout.core import persisting
from rollout.core.states import RolloutState
from rollout.errors import KubeError
from rollout.kube.resources import Resource

if TYPE_CHECKING:
    from rollout.kube.client import KubeClient

ROLLOUTS = Resource("delivery.rollout.dev", "v1alpha1", "rollouts", "Rollout")
FIELD_MANAGER = "rollout-daemon"
APPLY_PATCH = "application/apply-patch+yaml"


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
        """The engine state persisted in the status (a fresh state when there is none).

        Raises ``StateError`` when a state is there but cannot be read: acting as if nothing had
        happened could move traffic of a run in progress.
        """
        data = self.status.get("state")
        if not isinstance(data, Mapping):
            return RolloutState()
        return persisting.load(data)


def status_document(
    obj: RolloutObject,
    state: RolloutState,
    *,
    conditions: Sequence[Mapping[str, Any]],
    steps: int,
    invalid: str = "",
) -> dict[str, Any]:
    """The whole ``status`` the daemon writes for ``state`` (``invalid``: why the spec does not validate)."""
    observed = state.observed
    verdict = state.verdict
    return {
        "observedGeneration": obj.generation,
        "phase": "Invalid" if invalid else state.phase.value,
        "step": min(state.number, steps) if state.run_started_at else 0,
        "steps": steps,
        "canaryWeight": observed.canary if observed is not None else int(obj.status.get("canaryWeight", 0)),
        "stableWeight": observed.stable if observed is not None else int(obj.status.get("stableWeight", 100)),
        "desiredCanaryWeight": state.desired.canary,
        "match": str(state.match_observed) if state.match_observed is not None else "",
        "message": (f"invalid spec: {invalid}" if invalid else state.message)[:2000],
        "verdict": (verdict.summary if verdict is not None else "")[:500],
        "revision": state.revision,
        "conditions": [dict(c) for c in conditions],
        "state": persisting.dump(state),
    }


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
