"""App Mesh VirtualRouter router: weights on ``spec.routes[<name>].<protocol>Route.action.weightedTargets``.

Owns which route of a VirtualRouter carries the split (by name, or the only route, or the only
route naming the stable VirtualNode), its protocol key, and adding the canary VirtualNode at
weight 0 when missing (at most 10 targets, weights 0-100). An A/B step's managed route is one
more route, ``rollout-ab-<route>``, appended to ``spec.routes``: a copy of that route (match,
retry policy, timeout) with rollout's header (gRPC: metadata) and query conditions in front of
its own, all traffic to the canary VirtualNode, and a priority one more specific than the
route's (App Mesh: 0 is the most specific). It must not touch other routes, matches, retry
policies, timeouts, other targets or any other field.
"""

from __future__ import annotations

import copy
from typing import Any

from rollout.core.matches import RouteMatch
from rollout.errors import BackendNotInRoute, RouterError, RouteSchemaError
from rollout.kube.client import KubeClient, Resource
from rollout.policy.models import VirtualRouterRef
from rollout.routers.base import MANAGED_PREFIX, RouteReader, WriteGuard
from rollout.routers.matching import appmesh_condition, appmesh_query, foreign, read_conditions, with_conditions
from rollout.routers.patching import (
    KubeRouteRouter,
    ManagedEntries,
    TargetList,
    backend_matches,
    backend_ref,
    pointer,
)

VIRTUAL_ROUTERS = Resource("appmesh.k8s.aws", "v1beta2", "virtualrouters", "VirtualRouter")
PROTOCOLS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
MAX_TARGETS = 10


def _node_ref(entry: Any) -> Any:
    return entry.get("virtualNodeRef") if isinstance(entry, dict) else None


class VirtualRouterRouter(KubeRouteRouter):
    """Moves weight between the policy's two VirtualNodes on one route of a VirtualRouter."""

    resource = VIRTUAL_ROUTERS

    def __init__(
        self,
        client: KubeClient,
        ref: VirtualRouterRef,
        namespace: str,
        stable: str,
        canary: str,
        *,
        guard: WriteGuard | None = None,
        reader: RouteReader | None = None,
    ) -> None:
        super().__init__(client, ref.name, namespace, stable, canary, guard=guard, reader=reader)
        self.route = ref.route

    def describe(self) -> str:
        suffix = f" route {self.route}" if self.route else ""
        return f"{super().describe()}{suffix}"

    def locate(self, obj: dict[str, Any]) -> list[TargetList]:
        where = self.describe()
        routes = obj.get("spec", {}).get("routes") or []
        index = self._route_index(routes, where)
        route = routes[index]
        protocol = next((p for p in PROTOCOLS if isinstance(route.get(p), dict)), None)
        items = route.get(protocol, {}).get("action", {}).get("weightedTargets") if protocol else None
        if protocol is None or not isinstance(items, list):
            raise BackendNotInRoute(
                f"{where}: route {route.get('name')!r} has no <protocol>Route.action.weightedTargets"
            )
        stable = self._index(items, self.stable)
        if stable is None:
            names = ", ".join(str((_node_ref(e) or {}).get("name", "?")) for e in items) or "none"
            raise BackendNotInRoute(
                f"{where}: stable VirtualNode {self.stable!r} is not among the "
                f"weightedTargets of route {route.get('name')!r} ({names})"
            )
        new_canary: dict[str, Any] = {"virtualNodeRef": backend_ref(self.canary)}
        if "port" in items[stable]:
            new_canary["port"] = items[stable]["port"]
        return [
            TargetList(
                path=pointer("spec", "routes", index, protocol, "action", "weightedTargets"),
                items=items,
                stable=stable,
                canary=self._index(items, self.canary),
                new_canary=new_canary,
                max_items=MAX_TARGETS,
            )
        ]

    def _route_index(self, routes: list[Any], where: str) -> int:
        names = [r.get("name") if isinstance(r, dict) else None for r in routes]
        users = [i for i, name in enumerate(names) if not str(name).startswith(MANAGED_PREFIX)]
        if self.route is not None:
            if self.route not in names:
                raise BackendNotInRoute(
                    f"{where}: no route named {self.route!r} (routes: {', '.join(map(str, names)) or 'none'})"
                )
            return names.index(self.route)
        if len(users) == 1:
            return users[0]
        naming_stable = [
            i
            for i, r in enumerate(routes)
            if i in users
            and any(
                self._index(r.get(p, {}).get("action", {}).get("weightedTargets") or [], self.stable) is not None
                for p in PROTOCOLS
                if isinstance(r.get(p), dict)
            )
        ]
        if len(naming_stable) == 1:
            return naming_stable[0]
        if not routes:
            raise BackendNotInRoute(f"{where} has no routes")
        raise RouterError(
            f"{where} has {len(users)} routes and {len(naming_stable)} of them name "
            f"{self.stable!r}; set spec.router.virtualRouter.route to one of "
            f"{', '.join(str(names[i]) for i in users)}"
        )

    def managed(self, obj: dict[str, Any]) -> ManagedEntries:
        self.locate(obj)  # the route it copies must carry the stable backend
        where = self.describe()
        routes: list[Any] = obj.get("spec", {}).get("routes") or []
        index = self._route_index(routes, where)
        user = routes[index]
        name = f"{MANAGED_PREFIX}{user.get('name')}"
        mine = [i for i, r in enumerate(routes) if isinstance(r, dict) and r.get("name") == name]
        parsed = None
        if mine:
            found = routes[mine[0]]
            protocol = next((p for p in PROTOCOLS if isinstance(found.get(p), dict)), "")
            key = "metadata" if protocol == "grpcRoute" else "headers"
            live, users = found.get(protocol, {}).get("match") or {}, user.get(protocol, {}).get("match") or {}
            headers, odd = read_conditions(live.get(key) or [], users.get(key) or [], gateway=False)
            query, odd_query = read_conditions(
                live.get("queryParameters") or [], users.get("queryParameters") or [], gateway=False, query=True
            )
            parsed = RouteMatch(headers=headers, query=query)
            if odd or odd_query:
                parsed = foreign(parsed, f"conditions rollout never writes: {odd or odd_query}")

        def build(match: RouteMatch) -> list[dict[str, Any]]:
            return [self._managed_route(routes, index, name, match)]

        return ManagedEntries(pointer("spec", "routes"), routes, mine, parsed, build)

    def _managed_route(self, routes: list[Any], index: int, name: str, match: RouteMatch) -> dict[str, Any]:
        where = self.describe()
        user = routes[index]
        protocol = next((p for p in PROTOCOLS if isinstance(user.get(p), dict)), None)
        if protocol is None or protocol == "tcpRoute":
            raise RouteSchemaError(f"{where}: route {user.get('name')!r} is a {protocol}, which cannot match headers")
        block = copy.deepcopy(user[protocol])
        conditions = dict(block.get("match") or {})
        ours = [appmesh_condition(h) for h in match.headers]
        if protocol == "grpcRoute":
            if match.query:
                raise RouteSchemaError(f"{where}: route {user.get('name')!r} is a grpcRoute: no query parameters")
            conditions["metadata"] = with_conditions(conditions.get("metadata"), ours)
        else:
            if ours:
                conditions["headers"] = with_conditions(conditions.get("headers"), ours)
            if match.query:
                query = [appmesh_query(q, where) for q in match.query]
                conditions["queryParameters"] = with_conditions(conditions.get("queryParameters"), query)
        block["match"] = conditions
        targets = block.get("action", {}).get("weightedTargets") or []
        canary = self._index(targets, self.canary)
        stable = self._index(targets, self.stable)
        entry: dict[str, Any] = (
            copy.deepcopy(targets[canary]) if canary is not None else {"virtualNodeRef": backend_ref(self.canary)}
        )
        if canary is None and stable is not None and "port" in targets[stable]:
            entry["port"] = targets[stable]["port"]
        entry["weight"] = 100
        block["action"] = dict(block.get("action") or {}, weightedTargets=[entry])
        return {"name": name, "priority": self._priority(routes, index), protocol: block}

    def _priority(self, routes: list[Any], index: int) -> int:
        """One more specific than the user's route (App Mesh: 0 is the most specific)."""
        user = routes[index]
        priority = user.get("priority")
        if isinstance(priority, int):
            if priority <= 0:
                raise RouteSchemaError(
                    f"{self.describe()}: route {user.get('name')!r} has priority 0, the most specific there is, "
                    "so no managed route can take precedence over it: give it a priority of 1 or more"
                )
            return priority - 1
        others = [
            r.get("name")
            for i, r in enumerate(routes)
            if i != index and not str(r.get("name")).startswith(MANAGED_PREFIX) and "priority" not in r
        ]
        if others:
            raise RouteSchemaError(
                f"{self.describe()}: route {user.get('name')!r} has no priority and neither do "
                f"{', '.join(map(str, others))}; App Mesh then orders them itself, so a managed route "
                "cannot be placed just above it: give the routes priorities (0 is the most specific)"
            )
        return 1000  # above a route without priority, below every route that has one

    def _index(self, items: list[Any], backend: str) -> int | None:
        for i, entry in enumerate(items):
            if backend_matches(_node_ref(entry), backend, self.namespace):
                return i
        return None
