"""The companion GatewayRoute of an A/B step: rendered from the user's GatewayRoute, and read back.

Owns what rollout creates next to a user's GatewayRoute so that the requests that match go to the
canary the native App Mesh way: a second GatewayRoute on the same ``virtualGatewayRef`` (and
``meshRef``), in the same layout as the user's (``spec.<routeType>`` or the seed's
``spec.routeSpec.<routeType>`` with ``spec.gatewayRouteName``), whose route block is the user's
(path match, rewrite, timeouts...) with rollout's header (gRPC: metadata) and query conditions in
front of the user's, whose action sends everything to the canary VirtualService (``target``, or a
one-entry ``weightedTargets`` when the user's route has weighted targets), and whose ``priority``
is one more specific than the user's (App Mesh: 0 is the most specific, 1000 the default). It is
labelled as rollout's and owned by the Rollout when both live in the same namespace. Reading it
back gives rollout's conditions, marked foreign when anything else differs. Pure: no I/O.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rollout.core.matches import RouteMatch
from rollout.errors import RouteSchemaError
from rollout.routers.base import MANAGED_BY, MANAGED_PREFIX, ROLLOUT_LABEL, ROUTE_LABEL, RouteOwner
from rollout.routers.matching import appmesh_condition, appmesh_query, foreign, read_conditions, with_conditions
from rollout.routers.patching import backend_ref, pointer

DEFAULT_PRIORITY = 1000  # App Mesh: a GatewayRoute without priority has the lowest, 1000
ROLLOUT_API = "delivery.rollout.dev/v1alpha1"


@dataclass(frozen=True)
class RouteBlock:
    """Where a GatewayRoute's route is: ``keys`` from the object root (``spec``, [``routeSpec``,]
    routeType) and the block itself."""

    keys: tuple[str, ...]
    route: dict[str, Any]

    @property
    def seed_layout(self) -> bool:
        return "routeSpec" in self.keys

    @property
    def route_type(self) -> str:
        return self.keys[-1]

    def path(self, *more: str) -> str:
        return pointer(*self.keys, *more)


class Render(Protocol):
    def __call__(self, match: RouteMatch, owner: RouteOwner | None = None) -> dict[str, Any]: ...


def name_for(route: str) -> str:
    """The companion's name: ``rollout-ab-<route>`` (hashed when that is too long for a name)."""
    name = f"{MANAGED_PREFIX}{route}"
    return name if len(name) <= 253 else f"{MANAGED_PREFIX}{hashlib.sha256(route.encode()).hexdigest()[:16]}"


def label_value(text: str) -> str:
    """``text`` as a label value (at most 63 characters; hashed beyond)."""
    return text if len(text) <= 63 else hashlib.sha256(text.encode()).hexdigest()[:40]


def _priority(spec: dict[str, Any], block: RouteBlock) -> tuple[tuple[str, ...], int | None]:
    """Where the user's route keeps its priority (and its value, None: not set)."""
    if block.seed_layout and isinstance((spec.get("routeSpec") or {}).get("priority"), int):
        return ("routeSpec", "priority"), spec["routeSpec"]["priority"]
    if isinstance(spec.get("priority"), int):
        return ("priority",), spec["priority"]
    return (("routeSpec", "priority") if block.seed_layout else ("priority",)), None


def render(
    user: dict[str, Any],
    *,
    block: RouteBlock,
    match: RouteMatch,
    canary: str,
    name: str,
    namespace: str,
    owner: RouteOwner | None,
    where: str,
) -> dict[str, Any]:
    """The companion GatewayRoute for ``match`` (see the module docstring)."""
    spec = user.get("spec") or {}
    route = copy.deepcopy(block.route)
    conditions = dict(route.get("match") or {})
    if block.route_type == "grpcRoute":
        if match.query:
            raise RouteSchemaError(f"{where}: a grpcRoute has no query parameters to match")
        ours = [appmesh_condition(h) for h in match.headers]
        conditions["metadata"] = with_conditions(conditions.get("metadata"), ours)
    else:
        if match.headers:
            ours = [appmesh_condition(h) for h in match.headers]
            conditions["headers"] = with_conditions(conditions.get("headers"), ours)
        if match.query:
            ours = [appmesh_query(q, where) for q in match.query]
            conditions["queryParameters"] = with_conditions(conditions.get("queryParameters"), ours)
    route["match"] = conditions
    action = {k: v for k, v in route["action"].items() if k not in ("target", "weightedTargets")}
    service = {"virtualServiceRef": backend_ref(canary)}
    single = block.route["action"].get("target")
    if isinstance(single, dict):
        action["target"] = dict(copy.deepcopy(single), virtualService=service)
    else:
        action["weightedTargets"] = [{"virtualService": service, "weight": 100}]
    route["action"] = action
    where_priority, priority = _priority(spec, block)
    priority = DEFAULT_PRIORITY if priority is None else priority
    if priority <= 0:
        raise RouteSchemaError(
            f"{where} has priority 0, the most specific there is, so no companion route can take "
            "precedence over it: give it a priority of 1 or more (App Mesh: 0 is the most specific)"
        )
    out: dict[str, Any] = {}
    for key in ("meshRef", "virtualGatewayRef"):
        if isinstance(spec.get(key), dict):
            out[key] = copy.deepcopy(spec[key])
    if block.seed_layout:
        out["gatewayRouteName"] = name
        out["routeSpec"] = {block.route_type: route}
    else:
        out[block.route_type] = route
    holder = out
    for key in where_priority[:-1]:
        holder = holder.setdefault(key, {})
    holder[where_priority[-1]] = priority - 1
    user_name = str(user.get("metadata", {}).get("name", ""))
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, ROUTE_LABEL: label_value(user_name)},
    }
    if owner is not None:
        metadata["labels"][ROLLOUT_LABEL] = label_value(owner.name)
        if owner.uid and owner.namespace == namespace:
            metadata["ownerReferences"] = [
                {"apiVersion": ROLLOUT_API, "kind": "Rollout", "name": owner.name, "uid": owner.uid}
            ]
    return {
        "apiVersion": user.get("apiVersion", "appmesh.k8s.aws/v1beta2"),
        "kind": "GatewayRoute",
        "metadata": metadata,
        "spec": out,
    }


def _essential(spec: dict[str, Any]) -> dict[str, Any]:
    """The parts of a companion's spec rollout decides (what a controller may add is left out)."""
    keep = ("virtualGatewayRef", "gatewayRouteName", "routeSpec", "priority", "httpRoute", "http2Route", "grpcRoute")
    return {k: spec[k] for k in keep if k in spec}


def read(
    found: dict[str, Any],
    *,
    user: dict[str, Any],
    block: RouteBlock,
    rendering: Callable[[RouteMatch], dict[str, Any]],
    where: str,
) -> RouteMatch:
    """What the companion ``found`` sends to the canary; raises ``RouteSchemaError`` when an object
    of its name exists that rollout does not manage."""
    user_name = str(user.get("metadata", {}).get("name", ""))
    labels = found.get("metadata", {}).get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") != MANAGED_BY or labels.get(ROUTE_LABEL) != label_value(user_name):
        name = found.get("metadata", {}).get("name")
        raise RouteSchemaError(
            f"{where}: GatewayRoute {name} exists and is not rollout's companion of it (labels "
            f"app.kubernetes.io/managed-by={MANAGED_BY}, {ROUTE_LABEL}={label_value(user_name)}); "
            "rename or delete it so that rollout can create its own"
        )
    spec = found.get("spec") or {}
    route = spec.get(block.route_type) or (spec.get("routeSpec") or {}).get(block.route_type) or {}
    live = route.get("match") or {}
    users = block.route.get("match") or {}
    key = "metadata" if block.route_type == "grpcRoute" else "headers"
    headers, odd_headers = read_conditions(live.get(key) or [], users.get(key) or [], gateway=False)
    query, odd_query = read_conditions(
        live.get("queryParameters") or [], users.get("queryParameters") or [], gateway=False, query=True
    )
    parsed = RouteMatch(headers=headers, query=query)
    if odd_headers or odd_query:
        return foreign(parsed, f"conditions rollout never writes: {odd_headers or odd_query}")
    try:
        expected = rendering(parsed)
    except RouteSchemaError as e:
        return foreign(parsed, str(e))
    if _essential(expected["spec"]) != _essential(spec):
        return foreign(parsed, "not what rollout writes for it (edited, or the route it copies changed)")
    return parsed
