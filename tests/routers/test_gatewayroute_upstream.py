"""The GatewayRoute router against the real upstream App Mesh GatewayRoute CRD, whose action has a
single required ``target`` and prunes ``weightedTargets``: it must explain, and change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.core.states import STABLE_ONLY, Weights
from rollout.errors import RouteSchemaError
from rollout.kube.client import KubeClient
from rollout.policy.models import GatewayRouteRef
from rollout.routers.gatewayroute import GATEWAY_ROUTES, GatewayRouteRouter
from tests.harness.kube import ControlPlane
from tests.routers.cases import CANARY, STABLE, gateway_route

pytestmark = pytest.mark.kube


def _single_target_route(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "GatewayRoute",
        "metadata": {"name": name},
        "spec": {
            "httpRoute": {
                "match": {"prefix": "/reco"},
                "action": {
                    "target": {"virtualService": {"virtualServiceRef": {"name": STABLE}}},
                    "rewrite": {"prefix": {"defaultPrefix": "DISABLED"}},
                },
            }
        },
    }


def test_upstream_gatewayroute_explains_and_leaves_object_unchanged(
    upstream_control_plane: ControlPlane,
) -> None:
    plane = upstream_control_plane
    plane.create_namespace("gr-upstream")
    client = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        client.create(GATEWAY_ROUTES, "gr-upstream", _single_target_route("reco"))
        before = client.get(GATEWAY_ROUTES, "gr-upstream", "reco")
        guard_calls: list[int] = []
        router = GatewayRouteRouter(
            client,
            GatewayRouteRef(name="reco"),
            "gr-upstream",
            STABLE,
            CANARY,
            guard=lambda: guard_calls.append(1),
        )
        assert router.get_weights() == STABLE_ONLY  # the single target is the stable service
        with pytest.raises(RouteSchemaError) as info:
            router.set_weights(Weights.of_canary(5), expected=STABLE_ONLY)
        message = str(info.value)
        assert "weightedTargets" in message
        assert "pruned" in message
        assert "spec.router.virtualRouter" in message
        assert "left unchanged" in message
        assert guard_calls == [], "nothing but a dry run was sent"
        assert client.get(GATEWAY_ROUTES, "gr-upstream", "reco") == before
    finally:
        client.close()


def test_upstream_gatewayroute_prunes_the_seed_shape(upstream_control_plane: ControlPlane) -> None:
    """The seed's weightedTargets shape is pruned on create too; without ``target`` it is invalid."""
    plane = upstream_control_plane
    plane.create_namespace("gr-seed-shape")
    client = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        seed = gateway_route("seed", 95, 5, with_canary=True)
        seed["spec"]["httpRoute"]["action"]["target"] = {"virtualService": {"virtualServiceRef": {"name": STABLE}}}
        stored = client.create(GATEWAY_ROUTES, "gr-seed-shape", seed)
        assert "weightedTargets" not in stored["spec"]["httpRoute"]["action"]
        assert "timeout" not in stored["spec"]["httpRoute"]  # not in the real schema either
    finally:
        client.close()


def test_upstream_gatewayroute_switches_its_single_target_for_0_and_100(upstream_control_plane: ControlPlane) -> None:
    """A GatewayRoute with one target can carry 0% or 100% canary: rollout switches the target
    (promotion and rollback), changing nothing else."""
    plane = upstream_control_plane
    plane.create_namespace("gr-switch")
    client = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        client.create(GATEWAY_ROUTES, "gr-switch", _single_target_route("reco"))
        before = client.get(GATEWAY_ROUTES, "gr-switch", "reco")
        router = GatewayRouteRouter(client, GatewayRouteRef(name="reco"), "gr-switch", STABLE, CANARY)
        assert router.set_weights(Weights.of_canary(100), expected=STABLE_ONLY) == Weights.of_canary(100)
        after = client.get(GATEWAY_ROUTES, "gr-switch", "reco")
        action = after["spec"]["httpRoute"]["action"]
        assert action["target"] == {"virtualService": {"virtualServiceRef": {"name": CANARY}}}
        assert action["rewrite"] == before["spec"]["httpRoute"]["action"]["rewrite"]
        assert after["spec"]["httpRoute"]["match"] == before["spec"]["httpRoute"]["match"]
        assert router.set_weights(STABLE_ONLY, expected=Weights.of_canary(100)) == STABLE_ONLY
        assert client.get(GATEWAY_ROUTES, "gr-switch", "reco")["spec"] == before["spec"]
    finally:
        client.close()
