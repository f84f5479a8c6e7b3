"""App Mesh GatewayRoute router: weights on ``<route block>.action.weightedTargets`` (or a single
``action.target``), and an A/B step's companion GatewayRoute.

Owns where a GatewayRoute keeps its VirtualService targets, detected per object: the route block
is ``spec.<routeType>`` (the App Mesh CRD) or ``spec.routeSpec.<routeType>`` (the layout the
seed's manifests use, next to ``spec.gatewayRouteName``), for routeType httpRoute / http2Route /
grpcRoute. It adds the canary entry at weight 0 when missing; on a route with a single
``action.target`` (the real App Mesh schema, which prunes ``weightedTargets``) it can only switch
that target between the two backends (0% or 100%) and explains why anything in between cannot be
written. An A/B step's managed route is a companion GatewayRoute (``companion.py``). It must not
touch match, rewrite, other targets or any other field (the write itself lives in ``patching.py``).
"""

from __future__ import annotations

import copy
from typing import Any

from rollout.core.matches import RouteMatch
from rollout.errors import BackendNotInRoute, KubeNotFound, MatchDrifted, RouteSchemaError
from rollout.kube.client import KubeClient, Resource
from rollout.policy.models import GatewayRouteRef
from rollout.routers import companion
from rollout.routers.base import RouteOwner, RouteReader, WriteGuard
from rollout.routers.companion import RouteBlock
from rollout.routers.patching import (
    KubeRouteRouter,
    TargetList,
    backend_matches,
    backend_ref,
    route_errors,
)

__all__ = ["GATEWAY_ROUTES", "GatewayRouteRouter", "RouteBlock"]

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

    def block(self, obj: dict[str, Any]) -> RouteBlock:
        """The route block of ``obj``, in either layout; raises ``BackendNotInRoute`` naming what is there."""
        rt = self.route_type.value
        spec: dict[str, Any] = obj.get("spec") or {}
        nested: dict[str, Any] = spec["routeSpec"] if isinstance(spec.get("routeSpec"), dict) else {}
        if isinstance(spec.get(rt), dict) and isinstance(spec[rt].get("action"), dict):
            return RouteBlock(("spec", rt), spec[rt])
        if isinstance(nested.get(rt), dict) and isinstance(nested[rt].get("action"), dict):
            return RouteBlock(("spec", "routeSpec", rt), nested[rt])
        present = sorted(
            [f"spec.{k}" for k in spec if k.endswith("Route")]
            + [f"spec.routeSpec.{k}" for k in nested if k.endswith("Route")]
        )
        raise BackendNotInRoute(
            f"{self.describe()} has no spec.{rt}.action (nor spec.routeSpec.{rt}.action); set "
            f"spec.router.gatewayRoute.routeType to the route type it uses (present: {', '.join(present) or 'none'})"
        )

    def locate(self, obj: dict[str, Any]) -> list[TargetList]:
        where = self.describe()
        block = self.block(obj)
        rt = ".".join(block.keys[1:])
        action = block.route["action"]
        path = block.path("action", "weightedTargets")
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
        switched = (
            block.path("action", "target"),
            self.targeting(single, self.stable),
            self.targeting(single, self.canary),
        )
        return [
            TargetList(
                path=path,
                items=None,
                stable=0,
                canary=1,
                new_canary=new_canary,
                reading=reading,
                parent=(block.path("action"), action),
                switch=switched,
            )
        ]

    @staticmethod
    def targeting(target: dict[str, Any], backend: str) -> dict[str, Any]:
        """A single ``action.target`` sent to ``backend`` (its port and other fields kept)."""
        entry = copy.deepcopy(target)
        entry["virtualService"] = {"virtualServiceRef": backend_ref(backend)}
        return entry

    def schema_error(self, path: str) -> RouteSchemaError:
        return RouteSchemaError(
            f"{self.describe()}: this cluster's GatewayRoute schema cannot hold weighted targets: the "
            f"API server pruned {path} from a dry-run write (the real App Mesh GatewayRoute routes to "
            "a single required action.target, so a GatewayRoute can only send all of its traffic to "
            "one backend: rollout switches that target for 0% and 100%, and runs A/B steps with a "
            "companion GatewayRoute). To split traffic by weight, use the VirtualRouter behind the "
            "VirtualService: set spec.router.virtualRouter {name, route} in the policy. The "
            "GatewayRoute was left unchanged."
        )

    # --- A/B steps: the companion GatewayRoute ----------------------------------------------

    @property
    def companion_name(self) -> str:
        return companion.name_for(self.name)

    def _companion(self) -> dict[str, Any] | None:
        """The companion as the API server has it now (never from a cache: a removal must be seen)."""
        try:
            return self.client.get(self.resource, self.namespace, self.companion_name)
        except KubeNotFound:
            return None

    def _read_match(self, user: dict[str, Any], found: dict[str, Any] | None) -> RouteMatch | None:
        self.locate(user)  # the route it accompanies must carry the stable backend
        if found is None:
            return None
        return companion.read(
            found, user=user, block=self.block(user), rendering=self._render_for(user), where=self.describe()
        )

    def _render_for(self, user: dict[str, Any]) -> companion.Render:
        block = self.block(user)

        def render(match: RouteMatch, owner: RouteOwner | None = None) -> dict[str, Any]:
            return companion.render(
                user,
                block=block,
                match=match,
                canary=self.canary,
                name=self.companion_name,
                namespace=self.namespace,
                owner=owner,
                where=self.describe(),
            )

        return render

    def get_match(self) -> RouteMatch | None:
        user = self.read()
        with route_errors(f"GatewayRoute {self.namespace}/{self.companion_name}"):
            return self._read_match(user, self._companion())

    def set_match(
        self, target: RouteMatch | None, *, expected: RouteMatch | None, check: bool, owner: RouteOwner | None
    ) -> RouteMatch | None:
        where = f"GatewayRoute {self.namespace}/{self.companion_name} (companion of {self.describe()})"
        user = self.read(fresh=True)
        with route_errors(where):
            found = self._companion()
            live = self._read_match(user, found)
            if check and live != expected:
                raise MatchDrifted(
                    f"{where}: the companion carries {live}, rollout expected {expected}; nothing was written"
                )
            if live == target:
                return live
            if target is None:
                assert found is not None
                self.guard()
                version = str(found.get("metadata", {}).get("resourceVersion") or "")
                self.client.delete(self.resource, self.namespace, self.companion_name, resource_version=version)
            else:
                body = self._render_for(user)(target, owner)
                self.guard()
                if found is None:
                    written = self.client.create(self.resource, self.namespace, body)
                else:
                    version = found.get("metadata", {}).get("resourceVersion")
                    ops = [
                        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
                        {"op": "replace", "path": "/spec", "value": body["spec"]},
                    ]
                    written = self.client.json_patch(self.resource, self.namespace, self.companion_name, ops)
                if self.reader is not None:
                    self.reader.written(self.resource, written)
        got = self.get_match()
        if got != target:
            raise MatchDrifted(f"{where}: wrote {target} but read back {got}")
        return got

    def _index(self, items: list[Any], backend: str) -> int | None:
        for i, entry in enumerate(items):
            if backend_matches(_service_ref(entry), backend, self.namespace):
                return i
        return None

    @staticmethod
    def _names(items: list[Any]) -> str:
        names = [str((_service_ref(e) or {}).get("name", "?")) for e in items]
        return ", ".join(names) or "none"
