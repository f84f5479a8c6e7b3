"""Largest-remainder normalisation of relative weights to percent, and router selection by policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.core.states import Weights
from rollout.errors import RouterError
from rollout.kube.client import KubeClient
from rollout.policy.models import Rollout
from rollout.routers.building import router_for
from rollout.routers.gatewayroute import GatewayRouteRouter
from rollout.routers.httproute import HTTPRouteRouter
from rollout.routers.patching import KubeRouteRouter
from rollout.routers.splitting import largest_remainder, percent_split
from rollout.routers.virtualrouter import VirtualRouterRouter


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 1], [50, 50]),
        ([1, 2], [33, 67]),
        ([2, 1], [67, 33]),
        ([1, 1, 1], [34, 33, 33]),
        ([0, 5], [0, 100]),
        ([199, 1], [100, 0]),
        ([1, 199], [1, 99]),
        ([999_999, 1], [100, 0]),
        ([3, 3, 3, 1], [30, 30, 30, 10]),
        ([95, 5], [95, 5]),
    ],
)
def test_largest_remainder_table(values: list[int], expected: list[int]) -> None:
    assert largest_remainder(values) == expected


@given(st.lists(st.integers(0, 1_000_000), min_size=1, max_size=16).filter(lambda v: sum(v) > 0))
def test_largest_remainder_sums_to_100_and_stays_within_one(values: list[int]) -> None:
    shares = largest_remainder(values)
    assert sum(shares) == 100
    for value, share in zip(values, shares, strict=True):
        assert abs(share - 100 * value / sum(values)) < 1


def test_percent_split_favours_stable_on_a_tie_and_refuses_zero() -> None:
    assert percent_split(canary=1, stable=199, where="r") == Weights(canary=0, stable=100)
    assert percent_split(canary=1, stable=1, where="r") == Weights(canary=50, stable=50)
    with pytest.raises(RouterError, match="weight 0"):
        percent_split(canary=0, stable=0, where="r")


def _policy(router: dict[str, object]) -> Rollout:
    return Rollout.model_validate(
        {
            "apiVersion": "delivery.rollout.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "reco", "namespace": "apps"},
            "spec": {"router": router, "stable": "v1", "canary": "v2", "steps": [{"setWeight": 50}]},
        }
    )


@pytest.mark.parametrize(
    ("router", "cls", "namespace"),
    [
        ({"gatewayRoute": {"name": "gr", "routeType": "grpcRoute"}}, GatewayRouteRouter, "apps"),
        (
            {"virtualRouter": {"name": "vr", "namespace": "mesh", "route": "main"}},
            VirtualRouterRouter,
            "mesh",
        ),
        ({"httpRoute": {"name": "hr", "rule": 1}}, HTTPRouteRouter, "apps"),
    ],
)
def test_router_for_builds_the_router_the_policy_names(router: dict[str, object], cls: type, namespace: str) -> None:
    from kubernetes import client as k8s

    policy = _policy(router)
    spec = policy.spec
    built = router_for(
        spec.router, policy.route_namespace(), spec.stable, spec.canary, client=KubeClient(k8s.ApiClient())
    )
    assert isinstance(built, KubeRouteRouter)
    assert isinstance(built, cls)
    assert built.namespace == namespace
    assert (built.stable, built.canary) == ("v1", "v2")
    assert built.describe().startswith(f"{built.resource.kind} {namespace}/")
