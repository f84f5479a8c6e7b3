"""The Router contract, run over every router against a real kube-apiserver (CRD fixtures, and the
real upstream CRDs where ``../shared/crds`` exists) and over the in-memory fake where it applies.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from rollout.core.states import STABLE_ONLY, Weights
from rollout.errors import (
    BackendNotInRoute,
    RouteConflict,
    RouteForbidden,
    RouteNotFound,
    RouterError,
    WeightsDrifted,
)
from rollout.kube.client import KubeClient
from rollout.runtime.retrying import ROUTE_WRITES
from tests.harness.kube import ControlPlane
from tests.routers.cases import CANARY, OTHER, OTHER_WEIGHT, STABLE, RouteCase, kube_case

POLICY_WEIGHTS = (0, 5, 25, 50, 100)
KUBE_CASES = (
    "gatewayroute",
    "gatewayroute_seed",
    "virtualrouter",
    "httproute",
    "virtualrouter-upstream",
    "httproute-upstream",
)
ALL_CASES = ("memory", *KUBE_CASES)
_names = itertools.count()

pytestmark = pytest.mark.kube


def _route_name() -> str:
    return f"route-{next(_names)}"


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Iterator[RouteCase]:
    case_id: str = request.param
    if case_id == "memory":
        yield RouteCase("memory")
        return
    kind, _, where = case_id.partition("-")
    plane: ControlPlane = request.getfixturevalue("upstream_control_plane" if where == "upstream" else "control_plane")
    namespace = f"c{next(_names)}"
    plane.create_namespace(namespace)
    client = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        yield kube_case(kind, case_id, client, namespace)
    finally:
        client.close()


def _plane(request: pytest.FixtureRequest, case: RouteCase) -> ControlPlane:
    name = "upstream_control_plane" if case.id.endswith("-upstream") else "control_plane"
    plane: ControlPlane = request.getfixturevalue(name)
    return plane


def _corrupt(canary: int, stable: int) -> Weights:
    """A Weights that bypassed validation (what a bug or a bad status could hand a router)."""
    weights = object.__new__(Weights)
    object.__setattr__(weights, "canary", canary)
    object.__setattr__(weights, "stable", stable)
    return weights


@pytest.mark.parametrize("case", ALL_CASES, indirect=True)
def test_round_trip_at_every_policy_weight(case: RouteCase) -> None:
    name = _route_name()
    case.create(name)
    router = case.router(name)
    assert router.get_weights() == STABLE_ONLY
    previous = STABLE_ONLY
    for canary in (*POLICY_WEIGHTS, 0):
        target = Weights.of_canary(canary)
        assert router.set_weights(target, expected=previous) == target
        assert router.get_weights() == target
        previous = target
    if case.is_kube:
        stored = {case.name_of(e): e.get("weight") for e in case.targets(case.live(name))}
        assert stored == {STABLE: 100, CANARY: 0, OTHER: OTHER_WEIGHT}


@pytest.mark.parametrize("case", KUBE_CASES, indirect=True)
def test_every_other_field_is_preserved(case: RouteCase) -> None:
    name = _route_name()
    case.create(name, Weights.of_canary(5))
    before = case.live(name)
    case.router(name).set_weights(Weights.of_canary(25), expected=Weights.of_canary(5))
    after = case.live(name)
    assert case.without_moving_weights(after) == case.without_moving_weights(before)
    assert {
        k: v for k, v in after["metadata"].items() if k not in ("resourceVersion", "generation", "managedFields")
    } == {k: v for k, v in before["metadata"].items() if k not in ("resourceVersion", "generation", "managedFields")}
    stored = {case.name_of(e): e.get("weight") for e in case.targets(after)}
    assert stored == {STABLE: 75, CANARY: 25, OTHER: OTHER_WEIGHT}


@pytest.mark.parametrize(
    "case", ["gatewayroute", "gatewayroute_seed", "virtualrouter", "virtualrouter-upstream"], indirect=True
)
def test_missing_canary_is_added_at_zero_and_nothing_removed(case: RouteCase) -> None:
    name = _route_name()
    case.create(name, raw=(100, None), with_canary=False)
    router = case.router(name)
    assert router.get_weights() == STABLE_ONLY
    before = case.live(name)
    assert router.set_weights(Weights.of_canary(5), expected=STABLE_ONLY) == Weights.of_canary(5)
    after_targets = case.targets(case.live(name))
    assert [case.name_of(e) for e in after_targets] == [STABLE, OTHER, CANARY]
    assert after_targets[:2] == [dict(case.targets(before)[0], weight=95), case.targets(before)[1]]
    assert after_targets[2]["weight"] == 5


@pytest.mark.parametrize("case", ALL_CASES, indirect=True)
def test_concurrent_writer_between_read_and_write(case: RouteCase) -> None:
    name = _route_name()
    case.create(name)
    calls: list[int] = []
    ports = [8080]

    def guard() -> None:  # runs between the router's read and its write: another writer sneaks in
        calls.append(1)
        if len(calls) == 1:
            ports.append(ports[-1] + 1)
            case.concurrent_edit(name, ports[-1])

    router = case.router(name, guard=guard)
    with pytest.raises(RouteConflict, match="changed between read and write"):
        router.set_weights(Weights.of_canary(5), expected=STABLE_ONLY)
    assert router.get_weights() == STABLE_ONLY, "a lost race must write nothing"

    calls.clear()
    result = ROUTE_WRITES.call(lambda: router.set_weights(Weights.of_canary(5), expected=STABLE_ONLY))
    assert result == Weights.of_canary(5)
    assert len(calls) == 2, "first attempt loses the race, the retry re-reads and wins"
    if case.is_kube:
        stable_entry = case.targets(case.live(name))[0]
        assert (case.name_of(stable_entry), stable_entry["port"], stable_entry["weight"]) == (
            STABLE,
            8082,
            95,
        ), "the other writer's change survives"


@pytest.mark.parametrize("case", ALL_CASES, indirect=True)
def test_drift_is_reported_and_nothing_written(case: RouteCase) -> None:
    name = _route_name()
    case.create(name, Weights.of_canary(25))
    router = case.router(name)
    before = case.live(name) if case.is_kube else None
    if not case.is_kube:
        case.memory[name].edit(Weights.of_canary(40))
    with pytest.raises(WeightsDrifted) as info:
        router.set_weights(Weights.of_canary(50), expected=Weights.of_canary(5))
    drifted = 25 if case.is_kube else 40
    assert (info.value.canary, info.value.stable) == (drifted, 100 - drifted)
    assert "expected" in str(info.value)
    assert router.get_weights() == Weights.of_canary(drifted)
    if before is not None:
        assert case.live(name)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


@pytest.mark.parametrize("case", ALL_CASES, indirect=True)
def test_missing_route(case: RouteCase) -> None:
    router = case.router("no-such-route", guard=lambda: pytest.fail("guard called: a write was attempted"))
    with pytest.raises(RouteNotFound, match="no-such-route"):
        router.get_weights()
    with pytest.raises(RouteNotFound, match="no-such-route"):
        router.set_weights(Weights.of_canary(5), expected=None)


@pytest.mark.parametrize("case", KUBE_CASES, indirect=True)
@pytest.mark.parametrize("missing", ["stable", "canary"])
def test_missing_backend_is_rejected_before_any_write(case: RouteCase, missing: str) -> None:
    name = _route_name()
    case.create(name)
    before = case.live(name)
    backends = {"stable": STABLE, "canary": CANARY, missing: "not-a-backend"}
    router = case.router(
        name,
        stable=backends["stable"],
        canary=backends["canary"],
        guard=lambda: pytest.fail("guard called: a write was attempted"),
    )
    if missing == "canary" and not case.id.startswith("httproute"):
        # App Mesh routers add a missing canary at weight 0; here the canary name is simply new.
        assert router.get_weights() == STABLE_ONLY
        return
    with pytest.raises(BackendNotInRoute, match="not-a-backend"):
        router.set_weights(Weights.of_canary(5), expected=None)
    with pytest.raises(BackendNotInRoute):
        router.get_weights()
    assert case.live(name) == before


@pytest.mark.parametrize("case", ALL_CASES, indirect=True)
@pytest.mark.parametrize(("canary", "stable"), [(5, 90), (101, -1), (-5, 105), (True, 99)])
def test_invalid_weights_are_rejected_before_any_write(case: RouteCase, canary: int, stable: int) -> None:
    name = _route_name()
    case.create(name)
    before = case.live(name) if case.is_kube else None
    router = case.router(name, guard=lambda: pytest.fail("guard called: a write was attempted"))
    with pytest.raises(RouterError, match="invalid target weights"):
        router.set_weights(_corrupt(canary, stable), expected=None)
    assert router.get_weights() == STABLE_ONLY
    if before is not None:
        assert case.live(name) == before


@pytest.mark.parametrize("case", KUBE_CASES, indirect=True)
def test_service_account_without_patch_rights_is_forbidden(case: RouteCase, request: pytest.FixtureRequest) -> None:
    name = _route_name()
    case.create(name)
    before = case.live(name)
    assert case.resource is not None
    plane = _plane(request, case)
    reader = plane.service_account_kubeconfig(
        case.namespace,
        "reader",
        [
            {
                "apiGroups": [case.resource.group],
                "resources": [case.resource.plural],
                "verbs": ["get", "list", "watch"],
            }
        ],
    )
    nobody = plane.service_account_kubeconfig(case.namespace, "nobody", [])
    for path, verb in ((reader, "patch"), (nobody, "get")):
        client = KubeClient.from_kubeconfig(str(path))
        try:
            router = case.router(name, client=client)
            with pytest.raises(RouteForbidden) as info:
                router.set_weights(Weights.of_canary(5), expected=STABLE_ONLY)
        finally:
            client.close()
        message = str(info.value)
        assert f'cannot {verb} resource "{case.resource.plural}"' in message
        assert case.resource.group in message
        assert f"system:serviceaccount:{case.namespace}:" in message
    assert case.live(name) == before
