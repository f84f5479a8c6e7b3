"""App Mesh GatewayRoute router: weights on ``spec.<routeType>.action.weightedTargets``.

Owns where a GatewayRoute keeps its VirtualService targets (httpRoute / http2Route / grpcRoute),
adding the canary entry at weight 0 when missing, and the explanation for clusters whose real
App Mesh schema has a single ``action.target`` and prunes ``weightedTargets``. It must not touch
match, rewrite, other targets or any other field (the write itself lives in ``patching.py``).
"""

from __future__ import annotations

from typing import Any

from rollout.errors import BackendNotInRoute, RouteSchemaError
from rollout.kube.client import KubeClient, Resource
from rollout.policy.models import GatewayRouteRef
from rollout.routers.base import RouteReader, WriteGuard
from rollout.routers.patching import (
    KubeRouteRouter,
    TargetList,
    backend_matches,
    backend_ref,
    pointer,
)

GATEWAY_ROUTES = Resource("appmesh.k8s.aws", "v1beta2", "gatewayroutes", "GatewayRoute")
MAX_TARGETS = 10


def _service_ref(entry: Any) -> Any:
    return entry.get("virtualService", {}).get("virtualServiceRef") if isinstance(entry, dict) else None


class GatewayRouteRouter(KubeRouteRouter):
    """Moves weight between the policy's two VirtualServices in a GatewayRoute's weightedTargets."""

    resource = GATEWAY_ROUTES

    def __init__(
        self,
        client: KubeClient,
        ref: GatewayRouteRef,
        namespace: str,
        stable: str,
        canary: str,
        *,
        guard: WriteGuard | None = None,
        reader: RouteReader | None = None,
    ) -> None:
        super().__init__(client, ref.name, namespace, stable, canary, guard=guard, reader=reader)
        self.route_type = ref.route_type

    def locate(self, obj: dict[str, Any]) -> list[TargetList]:
        where, rt = self.describe(), self.route_type.value
        route = obj.get("spec", {}).get(rt)
        if not isinstance(route, dict) or not isinstance(route.get("action"), dict):
            present = sorted(k for k in obj.get("spec", {}) if k.endswith("Route"))
            raise BackendNotInRoute(
                f"{where} has no spec.{rt}.action; set spec.router.gatewayRoute.routeType to the "
                f"route type it uses (present: {', '.join(present) or 'none'})"
            )
        action = route["action"]
        path = pointer("spec", rt, "action", "weightedTargets")
        new_canary = {"virtualService": {"virtualServiceRef": backend_ref(self.canary)}}
        items = action.get("weightedTargets")
        if isinstance(items, list):
            stable = self._index(items, self.stable)
            if stable is None:
                raise BackendNotInRoute(
                    f"{where}: stable VirtualService {self.stable!r} is not among spec.{rt}.action."
                    f"weightedTargets ({self._names(items)})"
                )
            return [
                TargetList(
                    path=path,
                    items=items,
                    stable=stable,
                    canary=self._index(items, self.canary),
                    new_canary=new_canary,
                    max_items=MAX_TARGETS,
                )
            ]
        single = action.get("target")
        if not isinstance(single, dict):
            raise BackendNotInRoute(f"{where}: spec.{rt}.action has neither weightedTargets nor target")
        on_stable = self._index([single], self.stable) == 0
        on_canary = self._index([single], self.canary) == 0
        if not (on_stable or on_canary):
            raise BackendNotInRoute(
                f"{where}: spec.{rt}.action.target names {self._names([single])}, neither the "
                f"stable {self.stable!r} nor the canary {self.canary!r}"
            )
        stable_entry = {"virtualService": {"virtualServiceRef": backend_ref(self.stable)}}
        reading = [
            dict(stable_entry, weight=100 if on_stable else 0),
            dict(new_canary, weight=100 if on_canary else 0),
        ]
        return [
            TargetList(
                path=path,
                items=None,
                stable=0,
                canary=1,
                new_canary=new_canary,
                reading=reading,
                parent=(pointer("spec", rt, "action"), action),
            )
        ]

    def schema_error(self, path: str) -> RouteSchemaError:
        return RouteSchemaError(
            f"{self.describe()}: this cluster's GatewayRoute schema cannot hold weighted targets: the "
            f"API server pruned {path} from a dry-run write (the real App Mesh GatewayRoute routes to "
            "a single required action.target, so a GatewayRoute cannot split traffic). Split on the "
            "VirtualRouter behind the VirtualService instead: set spec.router.virtualRouter "
            "{name, route} in the policy. The GatewayRoute was left unchanged."
        )

    def _index(self, items: list[Any], backend: str) -> int | None:
        for i, entry in enumerate(items):
            if backend_matches(_service_ref(entry), backend, self.namespace):
                return i
        return None

    @staticmethod
    def _names(items: list[Any]) -> str:
        names = [str((_service_ref(e) or {}).get("name", "?")) for e in items]
        return ", ".join(names) or "none"
