"""The local stack's mesh routes synthetic requests the way the data plane would: through the routes
and the managed routes the real routers write on a real API server (fixtures and upstream CRDs),
so an A/B step sends exactly the requests carrying the header to the canary; and its evaluator
follows App Mesh priorities and Gateway API match precedence."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from rollout.core.matches import MatchKind, MatchRule, RouteMatch
from rollout.core.states import Weights
from rollout.kube.client import KubeClient
from tests.harness.exporter import TrafficExporter
from tests.harness.kube import ControlPlane
from tests.harness.mesh import Mesh, MeshRoute, Request, appmesh_matches, gateway_rank, http_route_split
from tests.routers.cases import CANARY, OTHER, STABLE, RouteCase, kube_case

BETA = RouteMatch(headers=(MatchRule("X-Experiment-ID", MatchKind.EXACT, "beta"),))
_names = itertools.count()


def test_app_mesh_conditions() -> None:
    request = Request("/reco/x", {"x-experiment-id": "beta", "x-tier": "gold"}, {"exp": "1"})
    assert appmesh_matches({"prefix": "/reco"}, request)
    assert not appmesh_matches({"prefix": "/other"}, request)
    assert appmesh_matches({"headers": [{"name": "X-Experiment-ID", "match": {"exact": "beta"}}]}, request)
    assert appmesh_matches({"headers": [{"name": "X-Tier"}]}, request)  # present
    assert not appmesh_matches({"headers": [{"name": "X-Tier", "invert": True}]}, request)
    assert appmesh_matches({"headers": [{"name": "x-tier", "match": {"regex": "g.l."}}]}, request)
    assert not appmesh_matches({"headers": [{"name": "x-tier", "match": {"prefix": "s"}}]}, request)
    assert appmesh_matches({"queryParameters": [{"name": "exp", "match": {"exact": "1"}}]}, request)
    assert not appmesh_matches({"queryParameters": [{"name": "other"}]}, request)


def test_gateway_api_precedence_prefers_more_headers_then_rule_order() -> None:
    tagged, plain = Request("/reco", {"X-Experiment-ID": "beta"}), Request("/reco")
    path = {"type": "PathPrefix", "value": "/reco"}
    assert gateway_rank({"path": path}, plain) == (1, 5, 0, 0)
    header = {"type": "Exact", "name": "X-Experiment-ID", "value": "beta"}
    assert gateway_rank({"path": path, "headers": [header]}, plain) is None
    route = {
        "spec": {
            "rules": [
                {"matches": [{"path": path}], "backendRefs": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1}]},
                {"matches": [{"path": path, "headers": [header]}], "backendRefs": [{"name": "c"}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": "d"}]},
            ]
        }
    }
    assert http_route_split(route, plain) == {"a": 0.75, "b": 0.25}
    assert http_route_split(route, tagged) == {"c": 1.0}
    assert http_route_split(route, Request("/static")) == {"d": 1.0}


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Iterator[RouteCase]:
    case_id: str = request.param
    kind, _, where = case_id.partition("-")
    plane: ControlPlane = request.getfixturevalue("upstream_control_plane" if where == "upstream" else "control_plane")
    namespace = f"mesh{next(_names)}"
    plane.create_namespace(namespace)
    client = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        yield kube_case(kind, case_id, client, namespace)
    finally:
        client.close()


@pytest.mark.kube
@pytest.mark.parametrize(
    "case",
    ["gatewayroute", "gatewayroute_seed", "gatewayroute_single-upstream", "virtualrouter", "httproute-upstream"],
    indirect=True,
)
def test_the_mesh_sends_exactly_the_matching_requests_through_the_managed_route(case: RouteCase) -> None:
    name = f"route-{next(_names)}"
    case.create(name)
    router = case.router(name)
    assert case.client is not None and case.resource is not None
    mesh = Mesh(case.client, TrafficExporter(), total_rps=100, canary=CANARY)
    mesh.common_headers = {"x-tier": "gold"}  # the test routes match it
    entry = MeshRoute(case.namespace, name, case.resource.kind.lower(), "/reco/items")
    single = "single" in case.id
    before = mesh.splits(entry)
    assert before[0] == before[1]  # nothing tells the two kinds of request apart yet
    router.set_match(BETA, expected=None, check=True, owner=None)
    plain, tagged = mesh.splits(entry)
    assert tagged == {CANARY: 1.0}
    assert plain == before[0] and plain.get(CANARY, 0.0) == 0.0
    if not single:  # with a weight of the rest too
        router.set_weights(Weights.of_canary(50), expected=router.get_weights())
        plain, tagged = mesh.splits(entry)
        assert tagged == {CANARY: 1.0}
        assert plain[CANARY] == pytest.approx(plain[STABLE]) and OTHER in plain
    router.set_match(None, expected=BETA, check=True, owner=None)
    plain, tagged = mesh.splits(entry)
    assert plain == tagged
