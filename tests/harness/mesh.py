"""The local stack's "mesh": synthetic requests routed by the live routes, as Envoy would, into the
traffic exporter's per-backend request rates.

Owns a small route evaluator for the three route kinds rollout drives, read from the real API
server every ``period``: App Mesh GatewayRoutes (every GatewayRoute of the namespace on the same
``virtualGatewayRef``, in either layout, most specific ``priority`` first, 1000 by default),
App Mesh VirtualRouter routes (by priority, then order) and Gateway API HTTPRoute rules (the most
specific match wins: exact path, longest prefix, most headers, most query parameters, then rule
order). Matches honour path prefix/exact, headers (exact, prefix, suffix, regex, present,
invert; Gateway API Exact/RegularExpression) and query parameters. A configurable share of the
synthetic requests (``header_share``) carries ``headers`` (and ``query``), so that an A/B step's
managed route takes exactly those to the canary. A route that cannot be read keeps its last
split. It decides nothing about rollouts and writes nothing to the cluster.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from rollout.kube.client import KubeClient
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from rollout.routers.httproute import HTTP_ROUTES
from rollout.routers.virtualrouter import VIRTUAL_ROUTERS
from tests.harness.exporter import TrafficExporter

Split = dict[str, float]  # backend -> share of requests (sums to 1)
_ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute")


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class MeshRoute:
    """An entry point the synthetic requests are sent to: a route of ``kind`` (gatewayroute,
    virtualrouter, httproute) and the request path (None: the route's own prefix, else "/")."""

    namespace: str
    name: str
    kind: str = "gatewayroute"
    path: str | None = None

    def __getitem__(self, index: int) -> str:  # (namespace, name), as the old tuple entries
        return (self.namespace, self.name)[index]


def _weighted(targets: list[Any], name_of: Any, default: int = 0) -> Split:
    weights = {str(name_of(t)): float(t.get("weight", default)) for t in targets}
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()} if total > 0 else {}


def _service(entry: Any) -> str:
    return str(entry["virtualService"]["virtualServiceRef"]["name"])


def _appmesh_value(condition: dict[str, Any], value: str | None) -> bool:
    """An App Mesh header/query condition: no ``match`` means present; ``invert`` flips it."""
    match = condition.get("match")
    if value is None:
        ok = False
    elif not match:
        ok = True
    elif "exact" in match:
        ok = value == match["exact"]
    elif "prefix" in match:
        ok = value.startswith(match["prefix"])
    elif "suffix" in match:
        ok = value.endswith(match["suffix"])
    elif "regex" in match:
        ok = re.fullmatch(match["regex"], value) is not None
    elif "range" in match:
        ok = value.isdigit() and match["range"]["start"] <= int(value) < match["range"]["end"]
    else:
        ok = False
    return ok != bool(condition.get("invert"))


def appmesh_matches(match: dict[str, Any], request: Request) -> bool:
    if "prefix" in match and not request.path.startswith(str(match["prefix"])):
        return False
    path = match.get("path") or {}
    if "exact" in path and request.path != path["exact"]:
        return False
    if "regex" in path and re.fullmatch(path["regex"], request.path) is None:
        return False
    headers = match.get("headers") or match.get("metadata") or []
    if not all(_appmesh_value(h, request.header(h["name"])) for h in headers):
        return False
    return all(_appmesh_value(q, request.query.get(q["name"])) for q in match.get("queryParameters") or [])


def _gateway_value(condition: dict[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if condition.get("type", "Exact") == "RegularExpression":
        return re.fullmatch(condition["value"], value) is not None
    return bool(value == condition["value"])


def gateway_rank(match: dict[str, Any], request: Request) -> tuple[int, int, int, int] | None:
    """How specific a Gateway API match is for ``request`` (None: it does not match)."""
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    value = str(path.get("value", "/"))
    if path.get("type", "PathPrefix") == "Exact":
        if request.path != value:
            return None
        specificity = (2, len(value))
    else:
        prefix = value.rstrip("/")
        if not (request.path == prefix or request.path.startswith(prefix + "/") or not prefix):
            return None
        specificity = (1, len(prefix))
    headers, query = match.get("headers") or [], match.get("queryParams") or []
    if not all(_gateway_value(h, request.header(h["name"])) for h in headers):
        return None
    if not all(_gateway_value(q, request.query.get(q["name"])) for q in query):
        return None
    return (*specificity, len(headers), len(query))


def _block(spec: dict[str, Any]) -> dict[str, Any] | None:
    for holder in (spec, spec.get("routeSpec") or {}):
        for rt in _ROUTE_TYPES:
            if isinstance(holder.get(rt), dict):
                return dict(holder[rt])
    return None


def _priority(spec: dict[str, Any]) -> int:
    value = (spec.get("routeSpec") or {}).get("priority", spec.get("priority"))
    return int(value) if isinstance(value, int) else 1000


def gateway_route_split(routes: list[dict[str, Any]], entry: dict[str, Any], request: Request) -> Split:
    """Where a virtual gateway sends ``request``: among the GatewayRoutes on ``entry``'s gateway,
    the most specific priority that matches."""
    gateway = (entry.get("spec") or {}).get("virtualGatewayRef")
    same = [r for r in routes if (r.get("spec") or {}).get("virtualGatewayRef") == gateway] or [entry]
    for route in sorted(same, key=lambda r: (_priority(r["spec"]), r["metadata"]["name"])):
        block = _block(route["spec"])
        if block is None or not appmesh_matches(block.get("match") or {}, request):
            continue
        action = block.get("action") or {}
        if isinstance(action.get("weightedTargets"), list):
            return _weighted(action["weightedTargets"], _service)
        if isinstance(action.get("target"), dict):
            return {_service(action["target"]): 1.0}
    return {}


def virtual_router_split(router: dict[str, Any], request: Request) -> Split:
    routes = (router.get("spec") or {}).get("routes") or []
    order = sorted(range(len(routes)), key=lambda i: (routes[i].get("priority", 1001), i))
    for i in order:
        protocols = (*_ROUTE_TYPES, "tcpRoute")
        block: dict[str, Any] = next((routes[i][p] for p in protocols if isinstance(routes[i].get(p), dict)), {})
        if appmesh_matches(block.get("match") or {}, request):
            return _weighted(
                block.get("action", {}).get("weightedTargets") or [], lambda t: t["virtualNodeRef"]["name"]
            )
    return {}


def http_route_split(route: dict[str, Any], request: Request) -> Split:
    best: tuple[tuple[int, int, int, int], int] | None = None
    rules = (route.get("spec") or {}).get("rules") or []
    for index, rule in enumerate(rules):
        for match in rule.get("matches") or [{}]:
            rank = gateway_rank(match, request)
            if rank is not None and (best is None or rank > best[0]):
                best = (rank, index)
    if best is None:
        return {}
    return _weighted(rules[best[1]].get("backendRefs") or [], lambda b: b["name"], default=1)


class Mesh:
    """Sends ``total_rps`` through every route in ``routes``; ``header_share`` of it carries ``headers``."""

    def __init__(
        self,
        kube: KubeClient,
        exporter: TrafficExporter,
        *,
        total_rps: float,
        canary: str,
        period: float = 0.2,
        header_share: float = 0.1,
    ) -> None:
        self.kube, self.exporter, self.total_rps, self.period = kube, exporter, total_rps, period
        self.routes: list[MeshRoute] = []
        self.canary = canary
        self.canary_traffic = True  # False: the canary gets no requests whatever the routes say
        self.header_share = header_share
        self.headers: dict[str, str] = {"X-Experiment-ID": "beta"}  # what the header_share carries
        self.query: dict[str, str] = {}
        self.common_headers: dict[str, str] = {}  # what every request carries
        # backend -> (canary weight from which it fails, error rate then, error rate below it):
        # a fault that only shows under load, as the routes' live split decides it.
        self.faults: dict[str, tuple[int, float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mesh", daemon=True)

    def start(self) -> Mesh:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def weights(self, namespace: str, name: str) -> dict[str, int]:
        """A GatewayRoute's weighted targets as written (either layout; a single target is 100)."""
        route = self.kube.get(GATEWAY_ROUTES, namespace, name)
        action = (_block(route["spec"]) or {}).get("action") or {}
        if isinstance(action.get("target"), dict):
            return {_service(action["target"]): 100}
        return {_service(t): int(t.get("weight", 0)) for t in action["weightedTargets"]}

    def splits(self, route: MeshRoute) -> tuple[Split, Split]:
        """Where (requests without the headers, requests with them) go through ``route`` now."""
        kinds = {"gatewayroute": GATEWAY_ROUTES, "virtualrouter": VIRTUAL_ROUTERS, "httproute": HTTP_ROUTES}
        obj = self.kube.get(kinds[route.kind], route.namespace, route.name)
        path = route.path or str((_block(obj.get("spec") or {}) or {}).get("match", {}).get("prefix") or "/")
        plain = Request(path, dict(self.common_headers))
        tagged = Request(path, {**self.common_headers, **self.headers}, dict(self.query))
        if route.kind == "gatewayroute":
            everything = self.kube.list(GATEWAY_ROUTES, route.namespace)
            return gateway_route_split(everything, obj, plain), gateway_route_split(everything, obj, tagged)
        if route.kind == "virtualrouter":
            return virtual_router_split(obj, plain), virtual_router_split(obj, tagged)
        return http_route_split(obj, plain), http_route_split(obj, tagged)

    def _run(self) -> None:
        last: dict[MeshRoute, tuple[Split, Split]] = {}  # a route that cannot be read keeps its last split
        backends: set[str] = set()
        while not self._stop.is_set():
            routes = list(self.routes)
            for route in routes:
                with contextlib.suppress(Exception):  # the route may be mid-creation; next round
                    last[route] = self.splits(route)
            rps: dict[str, float] = dict.fromkeys(backends, 0.0)
            for route in routes:
                plain, tagged = last.get(route, ({}, {}))
                for split, share in ((plain, 1 - self.header_share), (tagged, self.header_share)):
                    for backend, fraction in split.items():
                        rps[backend] = rps.get(backend, 0.0) + self.total_rps * share * fraction
            for backend, value in rps.items():
                value = 0.0 if backend == self.canary and not self.canary_traffic else value
                fault = self.faults.get(backend)
                if fault is None:
                    self.exporter.set_backend(backend, rps=value)
                    continue
                at, bad, good = fault
                share = max((last.get(r, ({}, {}))[0].get(backend, 0.0) for r in routes), default=0.0)
                self.exporter.set_backend(backend, rps=value, error_rate=bad if share * 100 >= at else good)
            backends.update(rps)
            self._stop.wait(self.period)
