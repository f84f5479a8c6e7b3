"""HTTPRoute specifics on the real API server: relative weights read as percent, rule selection,
and the Accepted/ResolvedRefs conditions of the route's current generation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rollout.core.states import Weights
from rollout.errors import BackendNotInRoute, RouteNotAccepted
from rollout.kube.client import KubeClient
from rollout.policy.models import HTTPRouteRef
from rollout.routers.httproute import HTTP_ROUTES, HTTPRouteRouter
from tests.routers.cases import CANARY, STABLE, http_route

pytestmark = pytest.mark.kube
_names = itertools.count()


def _router(kube: KubeClient, namespace: str, name: str, **ref: Any) -> HTTPRouteRouter:
    return HTTPRouteRouter(kube, HTTPRouteRef(name=name, **ref), namespace, STABLE, CANARY)


@pytest.mark.parametrize(
    ("stable", "canary", "percent"),
    [(1, 1, 50), (None, None, 50), (2, 1, 33), (1, 2, 67), (999_999, 1, 0), (0, 3, 100), (1_000_000, 0, 0)],
)
def test_relative_weights_read_as_percent(
    kube: KubeClient, namespace: str, stable: int | None, canary: int | None, percent: int
) -> None:
    name = f"rel-{next(_names)}"
    kube.create(HTTP_ROUTES, namespace, http_route(name, stable, canary, with_canary=True))
    router = _router(kube, namespace, name)
    assert router.get_weights() == Weights.of_canary(percent)
    assert router.set_weights(Weights.of_canary(25), expected=Weights.of_canary(percent)) == (Weights.of_canary(25))
    refs = kube.get(HTTP_ROUTES, namespace, name)["spec"]["rules"][1]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs[:2]] == [(STABLE, 75), (CANARY, 25)]


def test_rule_selection(kube: KubeClient, namespace: str) -> None:
    kube.create(HTTP_ROUTES, namespace, http_route("rules", 100, 0, with_canary=True))
    assert _router(kube, namespace, "rules", rule=1).get_weights() == Weights.of_canary(0)
    with pytest.raises(BackendNotInRoute, match="rule 0 has no backendRef named 'reco-v1'"):
        _router(kube, namespace, "rules", rule=0).get_weights()
    with pytest.raises(BackendNotInRoute, match="no rule with index 7"):
        _router(kube, namespace, "rules", rule=7).get_weights()


def _status(generation: int, accepted: str, resolved: str) -> dict[str, Any]:
    def cond(kind: str, status: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": "Test",
            "message": f"{kind} is {status}",
            "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }

    return {
        "status": {
            "parents": [
                {
                    "parentRef": {"name": "public", "sectionName": "https"},
                    "controllerName": "example.net/gateway-controller",
                    "conditions": [cond("Accepted", accepted), cond("ResolvedRefs", resolved)],
                }
            ]
        }
    }


@pytest.mark.parametrize(
    ("accepted", "resolved", "blocked"),
    [("True", "True", None), ("False", "True", "Accepted=False"), ("True", "False", "ResolvedRefs=False")],
)
def test_route_not_accepted_for_current_generation(
    kube: KubeClient, namespace: str, accepted: str, resolved: str, blocked: str | None
) -> None:
    name = f"acc-{next(_names)}"
    created = kube.create(HTTP_ROUTES, namespace, http_route(name, 100, 0, with_canary=True))
    generation = created["metadata"]["generation"]
    kube.merge_patch(HTTP_ROUTES, namespace, name, _status(generation, accepted, resolved), subresource="status")
    router = _router(kube, namespace, name)
    if blocked is None:
        assert router.get_weights() == Weights.of_canary(0)
    else:
        with pytest.raises(RouteNotAccepted, match=blocked):
            router.get_weights()
    # conditions about an older generation say nothing about the current spec
    router.set_weights(Weights.of_canary(5), expected=None)
    assert kube.get(HTTP_ROUTES, namespace, name)["metadata"]["generation"] == generation + 1
    assert router.get_weights() == Weights.of_canary(5)
