"""The A/B part of the Router contract (``get_match``/``set_match``), run over every router against a
real kube-apiserver with the CRD fixtures and with the real upstream CRDs, and over the in-memory
fake: the managed route is created, changed and removed by conditional writes and read back; the
routes and rules the user wrote are left exactly as they were; someone else's change is reported
and nothing written; what a route cannot express is refused before anything changes."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.core.matches import MatchKind, MatchRule, RouteMatch
from rollout.core.states import CANARY_ONLY, STABLE_ONLY, Weights
from rollout.errors import MatchDrifted, RouteConflict, RouteForbidden, RouteSchemaError
from rollout.kube.client import KubeClient
from rollout.routers.base import MANAGED_PREFIX, RouteOwner
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from tests.harness.kube import ControlPlane
from tests.routers.cases import CANARY, RouteCase, kube_case

pytestmark = pytest.mark.kube

BETA = RouteMatch(headers=(MatchRule("X-Experiment-ID", MatchKind.EXACT, "beta"),))
GAMMA = RouteMatch(
    headers=(MatchRule("X-Experiment-ID", MatchKind.REGEX, "gamma-.*"),),
    query=(MatchRule("exp", MatchKind.EXACT, "1"),),
)
OWNER = RouteOwner("reco", "default", "8c6e2f9a-5a3b-4b64-9d3e-000000000001")
KUBE = (
    "gatewayroute",
    "gatewayroute_seed",
    "virtualrouter",
    "httproute",
    "gatewayroute_single-upstream",
    "virtualrouter-upstream",
    "httproute-upstream",
)
_names = itertools.count()


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Iterator[RouteCase]:
    case_id: str = request.param
    if case_id == "memory":
        yield RouteCase("memory")
        return
    kind, _, where = case_id.partition("-")
    plane: ControlPlane = request.getfixturevalue("upstream_control_plane" if where == "upstream" else "control_plane")
    namespace = f"m{next(_names)}"
    plane.create_namespace(namespace)
    client = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        yield kube_case(kind, case_id, client, namespace)
    finally:
        client.close()


def _name() -> str:
    return f"ab-{next(_names)}"


def _user_part(case: RouteCase, obj: dict[str, Any]) -> dict[str, Any]:
    """The route as the user wrote it: without server metadata and without rollout's managed entries."""
    out = copy.deepcopy({k: v for k, v in obj.items() if k not in ("metadata", "status")})
    spec = out.get("spec", {})
    for key in ("routes", "rules"):
        if key in spec:
            spec[key] = [e for e in spec[key] if not str(e.get("name", "")).startswith(MANAGED_PREFIX)]
    return out


def _companion(case: RouteCase, name: str) -> dict[str, Any]:
    assert case.client is not None
    return case.client.get(GATEWAY_ROUTES, case.namespace, f"{MANAGED_PREFIX}{name}")


@pytest.mark.parametrize("case", ["memory", *KUBE], indirect=True)
def test_the_managed_route_is_created_changed_and_removed_and_the_users_route_never_touched(case: RouteCase) -> None:
    name = _name()
    case.create(name)
    router = case.router(name)
    before = _user_part(case, case.live(name)) if case.is_kube else None
    assert router.get_match() is None
    for target, expected in ((BETA, None), (GAMMA, BETA), (None, GAMMA)):
        got = router.set_match(target, expected=expected, check=True, owner=OWNER)
        assert got == target and router.get_match() == target
        assert router.get_weights() == STABLE_ONLY
        if before is not None:
            assert _user_part(case, case.live(name)) == before, "the user's route is left exactly as it was"
    assert router.set_match(None, expected=None, check=True, owner=OWNER) is None  # removing nothing: no write


@pytest.mark.parametrize("case", ["memory", *KUBE], indirect=True)
def test_weights_move_with_the_managed_route_in_place(case: RouteCase) -> None:
    name = _name()
    case.create(name)
    router = case.router(name)
    router.set_match(BETA, expected=None, check=True, owner=OWNER)
    single = case.id.startswith("gatewayroute_single")
    for weights in (CANARY_ONLY, STABLE_ONLY) if single else (Weights.of_canary(10), Weights.of_canary(50)):
        previous = router.get_weights()
        assert router.set_weights(weights, expected=previous) == weights
        assert router.get_weights() == weights
        assert router.get_match() == BETA, "moving weights leaves the managed route as it is"


@pytest.mark.parametrize("case", KUBE, indirect=True)
def test_the_managed_route_is_the_native_one(case: RouteCase) -> None:
    name = _name()
    case.create(name)
    user = case.live(name)
    case.router(name).set_match(GAMMA, expected=None, check=True, owner=OWNER)
    live = case.live(name)
    header = {"name": "X-Experiment-ID", "match": {"regex": "gamma-.*"}}
    if case.id.startswith("gatewayroute"):
        made = _companion(case, name)
        assert made["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rollout"
        assert made["metadata"]["labels"]["delivery.rollout.dev/rollout"] == "reco"
        spec, users = made["spec"], user["spec"]
        assert spec["virtualGatewayRef"] == users["virtualGatewayRef"]
        seed = "routeSpec" in users
        route = spec["routeSpec"]["httpRoute"] if seed else spec["httpRoute"]
        priority = spec["routeSpec"]["priority"] if seed else spec["priority"]
        user_route = users["routeSpec"]["httpRoute"] if seed else users["httpRoute"]
        assert priority == (users["routeSpec"]["priority"] if seed else users["priority"]) - 1
        assert route["match"]["prefix"] == user_route["match"]["prefix"]
        assert route["match"]["headers"][-1] == user_route["match"]["headers"][-1]
        assert route["match"]["headers"][0] == header
        assert route["match"]["queryParameters"] == [{"name": "exp", "match": {"exact": "1"}}]
        if "single" in case.id:  # the user's route has one target: so has the companion
            assert route["action"]["target"]["virtualService"]["virtualServiceRef"]["name"] == CANARY
        else:
            targets = route["action"]["weightedTargets"]
            assert [(t["virtualService"]["virtualServiceRef"]["name"], t["weight"]) for t in targets] == [(CANARY, 100)]
        assert route["action"]["rewrite"] == user_route["action"]["rewrite"]
        assert "ownerReferences" not in made["metadata"]  # the Rollout lives in another namespace
    elif case.id.startswith("virtualrouter"):
        routes = live["spec"]["routes"]
        mine, main = routes[-1], routes[1]
        assert mine["name"] == f"{MANAGED_PREFIX}main" and mine["priority"] == main["priority"] - 1
        assert mine["httpRoute"]["match"]["headers"] == [header, *main["httpRoute"]["match"]["headers"]]
        assert mine["httpRoute"]["retryPolicy"] == main["httpRoute"]["retryPolicy"]
        assert [t["virtualNodeRef"]["name"] for t in mine["httpRoute"]["action"]["weightedTargets"]] == [CANARY]
    else:
        rules = live["spec"]["rules"]
        mine = rules[0]
        assert mine["name"].startswith(MANAGED_PREFIX) and [r.get("name") for r in rules[1:]] == [
            r.get("name") for r in user["spec"]["rules"]
        ]
        first = mine["matches"][0]
        assert first["headers"][0] == {"type": "RegularExpression", "name": "X-Experiment-ID", "value": "gamma-.*"}
        assert first["queryParams"] == [{"type": "Exact", "name": "exp", "value": "1"}]
        assert first["path"] == user["spec"]["rules"][1]["matches"][0]["path"]
        assert mine["filters"] == user["spec"]["rules"][1]["filters"]
        assert [b["name"] for b in mine["backendRefs"]] == [CANARY]


@pytest.mark.parametrize("case", ["memory", *KUBE], indirect=True)
def test_someone_elses_change_is_reported_and_nothing_written(case: RouteCase) -> None:
    name = _name()
    case.create(name)
    router = case.router(name)
    router.set_match(BETA, expected=None, check=True, owner=OWNER)
    if not case.is_kube:
        case.memory[name].edit_match(None)
    elif case.id.startswith("gatewayroute"):
        assert case.client is not None
        case.client.delete(GATEWAY_ROUTES, case.namespace, f"{MANAGED_PREFIX}{name}")
    else:
        assert case.client is not None and case.resource is not None
        key = "routes" if case.id.startswith("virtualrouter") else "rules"
        items = case.live(name)["spec"][key]
        index = next(i for i, e in enumerate(items) if str(e.get("name")).startswith(MANAGED_PREFIX))
        ops = [{"op": "remove", "path": f"/spec/{key}/{index}"}]
        case.client.json_patch(case.resource, case.namespace, name, ops)
    assert router.get_match() is None
    before = case.live(name) if case.is_kube else None
    with pytest.raises(MatchDrifted, match="expected"):
        router.set_match(None, expected=BETA, check=True, owner=OWNER)
    with pytest.raises(MatchDrifted):
        router.set_match(GAMMA, expected=BETA, check=True, owner=OWNER)
    if before is not None:
        assert case.live(name)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert router.set_match(BETA, expected=None, check=False, owner=OWNER) == BETA  # unchecked: restore


@pytest.mark.parametrize("case", ["memory", *KUBE], indirect=True)
def test_an_edited_managed_route_reads_back_as_foreign(case: RouteCase) -> None:
    name = _name()
    case.create(name)
    router = case.router(name)
    router.set_match(BETA, expected=None, check=True, owner=OWNER)
    if not case.is_kube:
        case.memory[name].edit_match(RouteMatch(BETA.headers, extra="someone's"))
    elif case.id.startswith("gatewayroute"):
        assert case.client is not None
        made = _companion(case, name)
        route = made["spec"]["routeSpec"]["httpRoute"] if "routeSpec" in made["spec"] else made["spec"]["httpRoute"]
        route["match"]["headers"][0]["invert"] = True
        case.client.json_patch(
            GATEWAY_ROUTES,
            case.namespace,
            made["metadata"]["name"],
            [{"op": "replace", "path": "/spec", "value": made["spec"]}],
        )
    else:
        assert case.client is not None and case.resource is not None
        key = "routes" if case.id.startswith("virtualrouter") else "rules"
        items = case.live(name)["spec"][key]
        index = next(i for i, e in enumerate(items) if str(e.get("name")).startswith(MANAGED_PREFIX))
        path = f"/spec/{key}/{index}/" + ("priority" if key == "routes" else "timeouts")
        value: Any = 0 if key == "routes" else {"request": "1s"}
        case.client.json_patch(case.resource, case.namespace, name, [{"op": "add", "path": path, "value": value}])
    live = router.get_match()
    assert live is not None and live != BETA and live.extra
    assert router.set_match(None, expected=live, check=True, owner=OWNER) is None  # abort: removed all the same


@pytest.mark.parametrize("case", ["memory", "gatewayroute", "virtualrouter", "httproute"], indirect=True)
def test_a_concurrent_writer_makes_the_write_lose_the_race(case: RouteCase) -> None:
    name = _name()
    case.create(name)
    calls: list[int] = []

    def guard() -> None:  # another writer sneaks in between the router's read and its write
        calls.append(1)
        if len(calls) == 1:
            if case.is_kube:
                case.concurrent_edit(name, 9000 + len(calls))
                if case.id.startswith("gatewayroute"):  # the companion appears meanwhile
                    case.router(name).set_match(GAMMA, expected=None, check=True, owner=OWNER)
            else:
                case.memory[name].touch()

    router = case.router(name, guard=guard)
    with pytest.raises(RouteConflict):
        router.set_match(BETA, expected=None, check=True, owner=OWNER)
    assert router.get_match() in (None, GAMMA)


@pytest.mark.parametrize(
    ("case", "mutate", "why"),
    [
        ("gatewayroute", lambda o: o["spec"].update(priority=0), "priority 0"),
        ("virtualrouter", lambda o: o["spec"]["routes"][1].update(priority=0), "priority 0"),
        (
            "virtualrouter",
            lambda o: o["spec"]["routes"][1].update(tcpRoute=o["spec"]["routes"][1].pop("httpRoute")),
            "tcpRoute",
        ),
        ("httproute", lambda o: None, "RegularExpression"),
    ],
    indirect=["case"],
)
def test_what_a_route_cannot_express_is_refused_before_anything_changes(case: RouteCase, mutate: Any, why: str) -> None:
    name = _name()
    assert case.client is not None and case.resource is not None and case.manifest is not None
    manifest = case.manifest(name, 100, 0, True)
    mutate(manifest)
    if case.id == "virtualrouter" and why == "tcpRoute":
        manifest["spec"]["routes"][1]["tcpRoute"].pop("match")
        for key in ("retryPolicy",):
            manifest["spec"]["routes"][1]["tcpRoute"].pop(key)
    case.client.create(case.resource, case.namespace, manifest)
    before = case.live(name)
    prefixed = RouteMatch(headers=(MatchRule("X-Experiment-ID", MatchKind.PREFIX, "be"),))
    with pytest.raises(RouteSchemaError, match=why):
        case.router(name).set_match(
            prefixed if why == "RegularExpression" else BETA, expected=None, check=True, owner=OWNER
        )
    assert case.live(name) == before


def test_an_object_of_the_companions_name_that_is_not_rollouts_is_never_taken(kube: KubeClient, namespace: str) -> None:
    case = kube_case("gatewayroute", "gatewayroute", kube, namespace)
    case.create("reco")
    squatter = case.manifest("rollout-ab-reco", 100, 0, True) if case.manifest else {}
    kube.create(GATEWAY_ROUTES, namespace, squatter)
    router = case.router("reco")
    with pytest.raises(RouteSchemaError, match="not rollout's companion"):
        router.set_match(BETA, expected=None, check=False, owner=OWNER)
    assert kube.get(GATEWAY_ROUTES, namespace, "rollout-ab-reco")["spec"] == squatter["spec"]


def test_the_companion_is_owned_by_a_rollout_in_its_namespace(kube: KubeClient, namespace: str) -> None:
    case = kube_case("gatewayroute", "gatewayroute", kube, namespace)
    case.create("reco")
    owner = RouteOwner("checkout-ab", namespace, "8c6e2f9a-5a3b-4b64-9d3e-000000000002")
    case.router("reco").set_match(BETA, expected=None, check=True, owner=owner)
    refs = kube.get(GATEWAY_ROUTES, namespace, "rollout-ab-reco")["metadata"]["ownerReferences"]
    assert refs == [
        {"apiVersion": "delivery.rollout.dev/v1alpha1", "kind": "Rollout", "name": "checkout-ab", "uid": owner.uid}
    ]


def test_a_service_account_that_may_only_patch_cannot_create_the_companion(
    control_plane: ControlPlane, kube: KubeClient, namespace: str
) -> None:
    case = kube_case("gatewayroute", "gatewayroute", kube, namespace)
    case.create("reco")
    patcher = control_plane.service_account_kubeconfig(
        namespace,
        "patcher",
        [
            {
                "apiGroups": ["appmesh.k8s.aws"],
                "resources": ["gatewayroutes"],
                "verbs": ["get", "list", "watch", "patch"],
            }
        ],
    )
    client = KubeClient.from_kubeconfig(str(patcher))
    try:
        with pytest.raises(RouteForbidden, match='cannot create resource "gatewayroutes"'):
            case.router("reco", client=client).set_match(BETA, expected=None, check=True, owner=OWNER)
    finally:
        client.close()
    assert case.router("reco").get_match() is None
