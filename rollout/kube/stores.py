"""Rollouts and RolloutCommands read from informer caches and written through the API server.

Owns the combination that makes a quiet reconcile cost no API request: reads come from the
informers' memory, a write goes to the API server (conditionally, as ``RolloutObjects`` and
``CommandObjects`` make it) and the object it returns is put back into the cache at once, so the
next read sees our own write and its watch echo changes nothing. One attempt per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from rollout.core.states import CommandResult
from rollout.errors import KubeNotFound
from rollout.kube.client import KubeClient, Resource
from rollout.kube.commands import CommandObject, CommandObjects
from rollout.kube.informers import Informer
from rollout.kube.rollouts import RolloutObject, RolloutObjects


class RolloutStore:
    """Rollouts: reads from ``informer``, status writes through ``objects``."""

    def __init__(self, informer: Informer, objects: RolloutObjects) -> None:
        self.informer, self.objects = informer, objects

    def get(self, namespace: str, name: str) -> RolloutObject:
        raw = self.informer.get(namespace, name)
        if raw is None:
            raise KubeNotFound(f"rollouts.delivery.rollout.dev {namespace}/{name} not found")
        return RolloutObject(raw)

    def keys(self) -> list[str]:
        return [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in self.informer.list()]

    def write_status(self, obj: RolloutObject, status: Mapping[str, Any]) -> RolloutObject:
        written = self.objects.write_status(obj, status)
        self.informer.apply(written.raw)
        return written


class CommandStore:
    """RolloutCommands: reads from ``informer``, acknowledgements and deletions through ``objects``."""

    def __init__(self, informer: Informer, objects: CommandObjects) -> None:
        self.informer, self.objects = informer, objects

    def pending(self, namespace: str, rollout: str) -> Sequence[CommandObject]:
        found = (CommandObject(o) for o in self.informer.list(namespace))
        return [c for c in found if c.rollout == rollout and not c.handled]

    def acknowledge(self, obj: CommandObject, result: object, *, by: str, now: datetime) -> None:
        assert isinstance(result, CommandResult)
        written = self.objects.acknowledge(obj, result, by=by, now=now)
        self.informer.apply(dict(written.raw))

    def expired(self, now: datetime, retention: timedelta) -> list[CommandObject]:
        """Handled commands older than ``retention`` (to delete: the API server keeps what we don't)."""
        out = []
        for raw in self.informer.list():
            command = CommandObject(raw)
            handled_at = (raw.get("status") or {}).get("handledAt")
            if not command.handled or not isinstance(handled_at, str):
                continue
            try:
                when = datetime.fromisoformat(handled_at.replace("Z", "+00:00"))
            except ValueError:
                continue
            if now - when >= retention:
                out.append(command)
        return out


class CachedReader:
    """Route objects read from informers where there is one for their kind, else with a GET."""

    def __init__(self, client: KubeClient, informers: Mapping[Resource, Informer]) -> None:
        self.client, self.informers = client, dict(informers)

    def __call__(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        informer = self.informers.get(resource)
        if informer is not None and informer.has_synced():
            raw = informer.get(namespace, name)
            if raw is None:
                raise KubeNotFound(f"{resource.name} {namespace}/{name} not found")
            return raw
        return self.client.get(resource, namespace, name)

    def written(self, resource: Resource, obj: Mapping[str, Any]) -> None:
        informer = self.informers.get(resource)
        if informer is not None:
            informer.apply(dict(obj))
