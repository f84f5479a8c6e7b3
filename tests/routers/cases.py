"""The backends the router contract suite runs over: how to create a realistic route of each kind
(with matches, filters, rewrites, retry policies, other targets and other routes/rules that the
router must leave alone), build its router, edit it as a concurrent writer, and strip the two
moving weights so that whole objects can be compared. Owns no assertions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rollout.core.states import STABLE_ONLY, Weights
from rollout.kube.client import KubeClient, Resource
from rollout.policy.models import GatewayRouteRef, HTTPRouteRef, VirtualRouterRef
from rollout.routers.base import Router, WriteGuard
from rollout.routers.gatewayroute import GATEWAY_ROUTES, GatewayRouteRouter
from rollout.routers.httproute import HTTP_ROUTES, HTTPRouteRouter
from rollout.routers.memory import MemoryRouter
from rollout.routers.virtualrouter import VIRTUAL_ROUTERS, VirtualRouterRouter

STABLE = "reco-v1"
CANARY = "reco-v2"
OTHER = "reco-legacy"  # a third target the user wrote; its weight must never move
OTHER_WEIGHT = 7


def _vs(name: str, weight: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"virtualService": {"virtualServiceRef": {"name": name}}}
    return entry if weight is None else dict(entry, weight=weight)


def _vn(name: str, weight: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"virtualNodeRef": {"name": name}}
    return entry if weight is None else dict(entry, weight=weight)


def _be(name: str, weight: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "port": 8080}
    return entry if weight is None else dict(entry, weight=weight)


def _targets(
    make: Callable[[str, int | None], dict[str, Any]],
    stable: int | None,
    canary: int | None,
    with_canary: bool,
) -> list[dict[str, Any]]:
    items = [make(STABLE, stable)]
    if with_canary:
        items.append(make(CANARY, canary))
    items.append(make(OTHER, OTHER_WEIGHT))
    return items


def gateway_route(name: str, stable: int | None, canary: int | None, with_canary: bool) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "GatewayRoute",
        "metadata": {"name": name, "labels": {"app": "reco"}, "annotations": {"owner": "team-reco"}},
        "spec": {
            "awsName": f"{name}_default",
            "priority": 10,
            "meshRef": {"name": "global", "uid": "0b1c2d3e"},
            "virtualGatewayRef": {"name": "ingress-gw", "namespace": "mesh", "uid": "9f8e7d6c"},
            "httpRoute": {
                "match": {"prefix": "/reco", "headers": [{"name": "x-tier", "match": {"exact": "gold"}}]},
                "action": {
                    "rewrite": {"prefix": {"defaultPrefix": "DISABLED", "value": "/"}},
                    "weightedTargets": _targets(_vs, stable, canary, with_canary),
                },
                "timeout": {"perRequest": {"unit": "ms", "value": 1500}},
            },
        },
    }


def gateway_route_seed(name: str, stable: int | None, canary: int | None, with_canary: bool) -> dict[str, Any]:
    """The same route in the seed manifests' layout: spec.gatewayRouteName and spec.routeSpec."""
    route = gateway_route(name, stable, canary, with_canary)
    spec = route["spec"]
    route["spec"] = {
        "gatewayRouteName": name,
        "meshRef": spec["meshRef"],
        "virtualGatewayRef": spec["virtualGatewayRef"],
        "routeSpec": {"priority": spec["priority"], "httpRoute": spec["httpRoute"]},
    }
    return route


def gateway_route_single(name: str, stable: int | None, canary: int | None, with_canary: bool) -> dict[str, Any]:
    """A GatewayRoute as the real App Mesh CRD holds it: one ``action.target`` (the stable service)."""
    del stable, canary, with_canary
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "GatewayRoute",
        "metadata": {"name": name, "labels": {"app": "reco"}},
        "spec": {
            "priority": 10,
            "meshRef": {"name": "global", "uid": "0b1c2d3e"},
            "virtualGatewayRef": {"name": "ingress-gw", "namespace": "mesh", "uid": "9f8e7d6c"},
            "httpRoute": {
                "match": {"prefix": "/reco", "headers": [{"name": "x-tier", "match": {"exact": "gold"}}]},
                "action": {
                    "target": {"virtualService": {"virtualServiceRef": {"name": STABLE}}},
                    "rewrite": {"prefix": {"defaultPrefix": "DISABLED"}},
                },
            },
        },
    }


def virtual_router(name: str, stable: int | None, canary: int | None, with_canary: bool) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualRouter",
        "metadata": {"name": name, "labels": {"app": "reco"}},
        "spec": {
            "awsName": f"{name}_default",
            "meshRef": {"name": "global", "uid": "0b1c2d3e"},
            "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
            "routes": [
                {
                    "name": "health",
                    "priority": 1,
                    "httpRoute": {
                        "match": {"prefix": "/health"},
                        "action": {"weightedTargets": [_vn(STABLE, 1)]},
                    },
                },
                {
                    "name": "main",
                    "priority": 10,
                    "httpRoute": {
                        "match": {"prefix": "/", "headers": [{"name": "x-tier", "match": {"prefix": "g"}}]},
                        "action": {"weightedTargets": _targets(_vn, stable, canary, with_canary)},
                        "retryPolicy": {
                            "maxRetries": 2,
                            "perRetryTimeout": {"unit": "ms", "value": 500},
                            "httpRetryEvents": ["server-error", "gateway-error"],
                        },
                        "timeout": {"perRequest": {"unit": "s", "value": 5}},
                    },
                },
            ],
        },
    }


def http_route(name: str, stable: int | None, canary: int | None, with_canary: bool) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "labels": {"app": "reco"}},
        "spec": {
            "parentRefs": [{"name": "public", "sectionName": "https"}],
            "hostnames": ["reco.example.com"],
            "rules": [
                {
                    "matches": [{"headers": [{"name": "x-canary", "value": "always"}]}],
                    "backendRefs": [_be(CANARY, None)],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/reco"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"add": [{"name": "x-via", "value": "rollout"}]},
                        }
                    ],
                    "backendRefs": _targets(_be, stable, canary, with_canary),
                    "timeouts": {"request": "10s"},
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "static", "port": 80}],
                },
            ],
        },
    }


@dataclass
class RouteCase:
    """One backend of the contract suite, bound to a namespace of a control plane (or memory)."""

    id: str
    namespace: str = "default"
    client: KubeClient | None = None
    resource: Resource | None = None
    manifest: Callable[[str, int | None, int | None, bool], dict[str, Any]] | None = None
    list_path: tuple[str | int, ...] = ()
    name_of: Callable[[dict[str, Any]], str] = lambda e: str(e.get("name"))
    make_router: Callable[[KubeClient, str, str, tuple[str, str], WriteGuard | None], Router] | None = None
    memory: dict[str, MemoryRouter] = field(default_factory=dict)

    @property
    def is_kube(self) -> bool:
        return self.client is not None

    def create(
        self,
        name: str,
        weights: Weights | None = STABLE_ONLY,
        *,
        raw: tuple[int | None, int | None] | None = None,
        with_canary: bool = True,
    ) -> None:
        """Create a route; ``raw`` gives the stored (stable, canary) weights as written (None: absent)."""
        stable, canary = raw if raw is not None else ((weights.stable, weights.canary) if weights else (100, 0))
        if self.client is None:
            self.memory[name] = MemoryRouter(STABLE, CANARY, weights=weights or Weights(0, 100), name=name)
            return
        assert self.resource is not None
        assert self.manifest is not None
        self.client.create(self.resource, self.namespace, self.manifest(name, stable, canary, with_canary))

    def router(
        self,
        name: str,
        *,
        stable: str = STABLE,
        canary: str = CANARY,
        guard: WriteGuard | None = None,
        client: KubeClient | None = None,
    ) -> Router:
        if self.client is None:
            fake = self.memory.get(name) or MemoryRouter(stable, canary, name=name)
            if name not in self.memory:
                fake.delete()
            fake.guard = guard
            return fake
        assert self.make_router is not None
        return self.make_router(client or self.client, name, self.namespace, (stable, canary), guard)

    def live(self, name: str) -> dict[str, Any]:
        assert self.client is not None
        assert self.resource is not None
        return self.client.get(self.resource, self.namespace, name)

    def targets(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        node: Any = obj
        for part in self.list_path:
            node = node[part]
        assert isinstance(node, list)
        return node

    def concurrent_edit(self, name: str, port: int) -> None:
        """Another writer sets the stable entry's port (not a weight) in the same targets list."""
        if self.client is None:
            self.memory[name].touch()
            return
        assert self.resource is not None
        path = "/" + "/".join(str(p) for p in (*self.list_path, 0, "port"))
        self.client.json_patch(self.resource, self.namespace, name, [{"op": "add", "path": path, "value": port}])

    def without_moving_weights(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The object minus metadata, status and the stable/canary weights of the targets list."""
        stripped = copy.deepcopy({k: v for k, v in obj.items() if k not in ("metadata", "status")})
        for entry in self.targets(stripped):
            if self.name_of(entry) in (STABLE, CANARY):
                entry.pop("weight", None)
        return stripped


def _gr_router(c: KubeClient, n: str, ns: str, backends: tuple[str, str], g: WriteGuard | None) -> Router:
    s, k = backends
    return GatewayRouteRouter(c, GatewayRouteRef(name=n), ns, s, k, guard=g)


def _vr_router(c: KubeClient, n: str, ns: str, backends: tuple[str, str], g: WriteGuard | None) -> Router:
    s, k = backends
    return VirtualRouterRouter(c, VirtualRouterRef(name=n, route="main"), ns, s, k, guard=g)


def _hr_router(c: KubeClient, n: str, ns: str, backends: tuple[str, str], g: WriteGuard | None) -> Router:
    s, k = backends
    return HTTPRouteRouter(c, HTTPRouteRef(name=n), ns, s, k, guard=g)


def kube_case(kind: str, case_id: str, client: KubeClient, namespace: str) -> RouteCase:
    """``kind``: gatewayroute, gatewayroute_seed (routeSpec layout), gatewayroute_single (one target),
    virtualrouter or httproute."""
    if kind.startswith("gatewayroute"):
        seed = kind == "gatewayroute_seed"
        return RouteCase(
            case_id,
            namespace,
            client,
            GATEWAY_ROUTES,
            {"gatewayroute": gateway_route, "gatewayroute_seed": gateway_route_seed}.get(kind, gateway_route_single),
            ("spec", "routeSpec", "httpRoute", "action", "weightedTargets")
            if seed
            else ("spec", "httpRoute", "action", "weightedTargets"),
            lambda e: str(e["virtualService"]["virtualServiceRef"]["name"]),
            _gr_router,
        )
    if kind == "virtualrouter":
        return RouteCase(
            case_id,
            namespace,
            client,
            VIRTUAL_ROUTERS,
            virtual_router,
            ("spec", "routes", 1, "httpRoute", "action", "weightedTargets"),
            lambda e: str(e["virtualNodeRef"]["name"]),
            _vr_router,
        )
    assert kind == "httproute"
    return RouteCase(
        case_id,
        namespace,
        client,
        HTTP_ROUTES,
        http_route,
        ("spec", "rules", 1, "backendRefs"),
        lambda e: str(e["name"]),
        _hr_router,
    )
