"""App Mesh VirtualRouter router: weights on ``spec.routes[<name>].<protocol>Route.action.weightedTargets``.

Owns which route of a VirtualRouter carries the split (by name, or the only route, or the only
route naming the stable VirtualNode), its protocol key, and adding the canary VirtualNode at
weight 0 when missing (at most 10 targets, weights 0-100). It must not touch other routes,
matches, retry policies, timeouts, other targets or any other field.
"""

from __future__ import annotations

from typing import Any

from rollout.errors import BackendNotInRoute, RouterError
from rollout.kube.client import KubeClient, Resource
from rollout.policy.models import VirtualRouterRef
from rollout.routers.base import RouteReader, WriteGuard
from rollout.routers.patching import (
    KubeRouteRouter,
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
        if self.route is not None:
            if self.route not in names:
                raise BackendNotInRoute(
                    f"{where}: no route named {self.route!r} (routes: {', '.join(map(str, names)) or 'none'})"
                )
            return names.index(self.route)
        if len(routes) == 1:
            return 0
        naming_stable = [
            i
            for i, r in enumerate(routes)
            if any(
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
            f"{where} has {len(routes)} routes and {len(naming_stable)} of them name "
            f"{self.stable!r}; set spec.router.virtualRouter.route to one of "
            f"{', '.join(map(str, names))}"
        )

    def _index(self, items: list[Any], backend: str) -> int | None:
        for i, entry in enumerate(items):
            if backend_matches(_node_ref(entry), backend, self.namespace):
                return i
        return None
