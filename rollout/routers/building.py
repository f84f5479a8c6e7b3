"""Choosing and building the Router a policy names (``spec.router``).

Owns the mapping from ``policy.spec.router`` to a router bound to the policy's backends and route
namespace. It must not read or write any route itself.
"""

from __future__ import annotations

from rollout.kube.client import KubeClient
from rollout.policy.models import Rollout
from rollout.routers.base import Router, WriteGuard
from rollout.routers.gatewayroute import GatewayRouteRouter
from rollout.routers.httproute import HTTPRouteRouter
from rollout.routers.virtualrouter import VirtualRouterRouter


def router_for(policy: Rollout, client: KubeClient, guard: WriteGuard | None = None) -> Router:
    """The router for ``policy``; the route's namespace defaults to the policy's."""
    spec, namespace = policy.spec.router, policy.route_namespace()
    stable, canary = policy.spec.stable, policy.spec.canary
    if spec.gateway_route is not None:
        return GatewayRouteRouter(client, spec.gateway_route, namespace, stable, canary, guard=guard)
    if spec.virtual_router is not None:
        return VirtualRouterRouter(client, spec.virtual_router, namespace, stable, canary, guard=guard)
    assert spec.http_route is not None  # RouterSpec guarantees exactly one router
    return HTTPRouteRouter(client, spec.http_route, namespace, stable, canary, guard=guard)
