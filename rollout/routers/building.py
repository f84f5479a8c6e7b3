"""Choosing and building the Router a policy names (``spec.router``).

Owns the mapping from a policy's ``spec.router`` to a router bound to a pair of backends and the
route's namespace. It must not read or write any route itself.
"""

from __future__ import annotations

from rollout.kube.client import KubeClient
from rollout.policy.models import RouterSpec
from rollout.routers.base import Router, RouteReader, WriteGuard
from rollout.routers.gatewayroute import GatewayRouteRouter
from rollout.routers.httproute import HTTPRouteRouter
from rollout.routers.virtualrouter import VirtualRouterRouter


def router_for(
    spec: RouterSpec,
    namespace: str,
    stable: str,
    canary: str,
    *,
    client: KubeClient,
    guard: WriteGuard | None = None,
    reader: RouteReader | None = None,
) -> Router:
    """The router ``spec`` names, in ``namespace``, moving weight between ``stable`` and ``canary``
    (reading through ``reader`` when given, e.g. an informer cache)."""
    if spec.gateway_route is not None:
        return GatewayRouteRouter(client, spec.gateway_route, namespace, stable, canary, guard=guard, reader=reader)
    if spec.virtual_router is not None:
        return VirtualRouterRouter(client, spec.virtual_router, namespace, stable, canary, guard=guard, reader=reader)
    assert spec.http_route is not None  # RouterSpec guarantees exactly one router
    return HTTPRouteRouter(client, spec.http_route, namespace, stable, canary, guard=guard, reader=reader)
