"""Rollouts and RolloutCommands read from informer caches and written through the API server.

Owns the combination that makes a quiet reconcile cost no API request: reads come from the
informers' memory, a write goes to the API server (conditionally, as ``RolloutObjects`` and
``CommandObjects`` make it) and the object it returns is put back into the cache at once, so the
next read sees our own write and its watch echo changes nothing. One attempt per call.

Lookups a reconcile or a route event makes are indexed, so they cost the same at any number of
Rollouts: the unhandled commands of one rollout (``CommandStore.pending``) and the Rollouts that
name one route (``RolloutsByRoute``), both kept by the informers' handlers.
"""

from __future__ import annotations

import threading
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

    def exists(self, namespace: str, name: str) -> bool:
        return self.informer.get(namespace, name) is not None

    def keys(self) -> list[str]:
        return [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in self.informer.list()]

    def write_status(self, obj: RolloutObject, status: Mapping[str, Any]) -> RolloutObject:
        written = self.objects.write_status(obj, status)
        self.informer.apply(written.raw)
        return written


class CommandStore:
    """RolloutCommands: reads from ``informer``, acknowledgements and deletions through ``objects``.

    Construct it before the informer starts: it registers the handlers that keep its index of
    unhandled commands by rollout."""

    def __init__(self, informer: Informer, objects: CommandObjects) -> None:
        self.informer, self.objects = informer, objects
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}  # (ns, rollout) -> name -> obj
        informer.add_handlers(self._seen, lambda old, new: self._seen(new), self._gone)

    def pending(self, namespace: str, rollout: str) -> Sequence[CommandObject]:
        """The unhandled commands for ``namespace/rollout``, in the order the cache first saw them."""
        with self._lock:
            found = list((self._pending.get((namespace, rollout)) or {}).values())
        return [CommandObject(o) for o in found]

    def _seen(self, obj: Mapping[str, Any]) -> None:
        command = CommandObject(obj)
        where = (command.namespace, command.rollout)
        with self._lock:
            if command.handled:
                self._drop(where, command.name)
            else:
                self._pending.setdefault(where, {})[command.name] = obj

    def _gone(self, obj: Mapping[str, Any]) -> None:
        command = CommandObject(obj)
        with self._lock:
            self._drop((command.namespace, command.rollout), command.name)

    def _drop(self, where: tuple[str, str], name: str) -> None:
        commands = self._pending.get(where)
        if commands is not None:
            commands.pop(name, None)
            if not commands:
                del self._pending[where]

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


class RolloutsByRoute:
    """Which Rollouts name a route (``namespace``, ``name``), in their spec or in the run they are
    in (``status.state.router``), kept by the Rollout informer's handlers (construct it before the
    informer starts). A route kind is not told apart: a rollout naming a GatewayRoute ``x`` is
    also found for a VirtualRouter ``x`` of that namespace, which only wakes it once more."""

    def __init__(self, informer: Informer) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, set[tuple[str, str]]] = {}  # rollout key -> the routes it names
        self._rollouts: dict[tuple[str, str], set[str]] = {}  # route -> rollout keys
        informer.add_handlers(self._seen, lambda old, new: self._seen(new), self._gone)

    def rollouts(self, namespace: str, name: str) -> set[str]:
        with self._lock:
            return set(self._rollouts.get((namespace, name), ()))

    def _seen(self, obj: Mapping[str, Any]) -> None:
        key, routes = key_of(obj), route_refs(obj)
        with self._lock:
            self._unlink(key)
            self._routes[key] = routes
            for route in routes:
                self._rollouts.setdefault(route, set()).add(key)

    def _gone(self, obj: Mapping[str, Any]) -> None:
        with self._lock:
            self._unlink(key_of(obj))

    def _unlink(self, key: str) -> None:
        for route in self._routes.pop(key, ()):
            keys = self._rollouts.get(route)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._rollouts[route]


def route_refs(obj: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (namespace, name) of every route a Rollout object names (spec and current run)."""
    meta = obj.get("metadata") or {}
    own = str(meta.get("namespace") or "")
    status = obj.get("status")
    state = status.get("state") if isinstance(status, Mapping) else None
    state = state if isinstance(state, Mapping) else {}
    spec = obj.get("spec")
    refs: set[tuple[str, str]] = set()
    for router, default in (
        ((spec or {}).get("router") if isinstance(spec, Mapping) else None, own),
        (state.get("router"), str(state.get("routeNamespace") or own)),
    ):
        if not isinstance(router, Mapping):
            continue
        for ref in router.values():
            if isinstance(ref, Mapping) and ref.get("name"):
                refs.add((str(ref.get("namespace") or default), str(ref["name"])))
    return refs


def key_of(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` of a Kubernetes object as the API server sends it."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class CachedReader:
    """Route objects read from informers where one covers their kind and namespace, else with a GET
    (a route in a namespace the daemon does not watch, allowed by ``tenancy.cross_namespace``)."""

    def __init__(
        self, client: KubeClient, informers: Mapping[Resource, Informer], *, namespaces: Sequence[str] = ()
    ) -> None:
        self.client, self.informers, self.namespaces = client, dict(informers), frozenset(namespaces)

    def __call__(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        informer = self.informers.get(resource)
        watched = not self.namespaces or namespace in self.namespaces
        if informer is not None and watched and informer.has_synced():
            raw = informer.get(namespace, name)
            if raw is None:
                raise KubeNotFound(f"{resource.name} {namespace}/{name} not found")
            return raw
        return self.client.get(resource, namespace, name)

    def written(self, resource: Resource, obj: Mapping[str, Any]) -> None:
        informer = self.informers.get(resource)
        if informer is not None:
            informer.apply(dict(obj))
