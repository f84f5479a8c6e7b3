"""In-memory Rollout objects, RolloutCommands, leadership and telemetry: the daemon's shell without
a cluster, for ``rollout simulate`` (and the shell's fast tests).

Owns stores that behave like the API server where it matters to the reconciler: every write bumps
a resourceVersion, status writes are conditional on it (a stale write raises ``KubeConflict``), a
missing object raises ``KubeNotFound``, commands get a uid and a creation time. No I/O.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rollout.core.states import CommandKind, CommandResult
from rollout.core.verdicts import Verdict
from rollout.errors import KubeConflict, KubeNotFound
from rollout.kube.commands import CommandObject, command_body
from rollout.kube.rollouts import RolloutObject


class InMemoryRollouts:
    """Rollout objects with resourceVersions, generations and conditional status writes."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, dict[str, Any]]] = []  # every status written, in order
        self._rv = itertools.count(1)

    def put(self, doc: Mapping[str, Any]) -> str:
        """Create or replace a Rollout's metadata and spec (its status is kept); returns its key."""
        raw = copy.deepcopy(dict(doc))
        meta = raw.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        key = f"{meta['namespace']}/{meta['name']}"
        old = self.objects.get(key)
        meta["uid"] = old["metadata"]["uid"] if old else f"uid-{key}"
        meta["generation"] = (old["metadata"]["generation"] + 1) if old else 1
        meta["resourceVersion"] = str(next(self._rv))
        if old is not None and "status" in old:
            raw["status"] = old["status"]
        self.objects[key] = raw
        return key

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def get(self, namespace: str, name: str) -> RolloutObject:
        raw = self.objects.get(f"{namespace}/{name}")
        if raw is None:
            raise KubeNotFound(f"rollouts {namespace}/{name} not found")
        return RolloutObject(copy.deepcopy(raw))

    def exists(self, namespace: str, name: str) -> bool:
        return f"{namespace}/{name}" in self.objects

    def write_status(self, obj: RolloutObject, status: Mapping[str, Any]) -> RolloutObject:
        current = self.objects.get(obj.key)
        if current is None:
            raise KubeNotFound(f"rollouts {obj.key} not found")
        if current["metadata"]["resourceVersion"] != obj.resource_version:
            raise KubeConflict(f"conditional patch of rollouts {obj.key} lost a race")
        current["status"] = copy.deepcopy(dict(status))
        current["metadata"]["resourceVersion"] = str(next(self._rv))
        self.writes.append((obj.key, copy.deepcopy(dict(status))))
        return RolloutObject(copy.deepcopy(current))

    def status(self, key: str) -> dict[str, Any]:
        return dict(self.objects[key].get("status") or {})


class InMemoryCommands:
    """RolloutCommands: created by people (or the simulator's operator), acknowledged by the daemon."""

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self.acks: list[tuple[str, CommandResult]] = []
        self._n = itertools.count(1)

    def create(self, namespace: str, rollout: str, kind: CommandKind, *, by: str, at: datetime, **kw: Any) -> str:
        body = command_body(namespace, rollout, kind, by=by, **kw)
        n = next(self._n)
        body["metadata"] |= {
            "name": f"cmd-{n}",
            "uid": f"cmd-uid-{n}",
            "creationTimestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.objects.append(body)
        return str(body["metadata"]["name"])

    def pending(self, namespace: str, rollout: str) -> Sequence[CommandObject]:
        return [
            CommandObject(copy.deepcopy(o))
            for o in self.objects
            if o["metadata"]["namespace"] == namespace and o["spec"].get("rollout") == rollout and not o.get("status")
        ]

    def acknowledge(self, obj: CommandObject, result: object, *, by: str, now: datetime) -> None:
        assert isinstance(result, CommandResult)
        for o in self.objects:
            if o["metadata"]["name"] == obj.name:
                phase = "Accepted" if result.accepted else "Ignored"
                o["status"] = {"phase": phase, "message": result.message, "handledBy": by}
        self.acks.append((obj.name, result))


class AlwaysLeader:
    """Leadership of a single process that owns everything."""

    def owns(self, key: str) -> bool:
        del key
        return True

    def guard(self, key: str) -> None:
        del key


class NullTelemetry:
    """Telemetry that records nothing."""

    def observe(
        self,
        namespace: str,
        name: str,
        *,
        phase: str,
        step: int,
        steps: int,
        canary_weight: int,
        desired_canary_weight: int,
        verdict: Verdict | None,
    ) -> None:
        del namespace, name, phase, step, steps, canary_weight, desired_canary_weight, verdict

    def promoted(self, namespace: str, name: str) -> None:
        del namespace, name

    def rolled_back(self, namespace: str, name: str) -> None:
        del namespace, name

    def forget(self, namespace: str, name: str) -> None:
        del namespace, name

    def api_error(self, kind: str) -> None:
        del kind
