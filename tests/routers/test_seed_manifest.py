"""The seed's canary GatewayRoute, applied exactly as written (``spec.gatewayRouteName``,
``spec.virtualGatewayRef``, ``spec.routeSpec.httpRoute.action.weightedTargets``) to a real
kube-apiserver whose CRD keeps that shape, is promoted by the seed policy: the engine drives the
real router, on exact synthetic counts and a clock that follows ScheduleNext. (The daemon does the
same in ``tests/e2e/test_ab.py``.)"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.core.actions import ScheduleNext, SetWeights
from rollout.core.engine import decide
from rollout.core.readings import Outcome, Reading, TargetCounters
from rollout.core.states import Observations, Phase, RolloutState, Weights
from rollout.errors import KubeNotFound
from rollout.kube.client import KubeClient
from rollout.policy.loading import load_paths
from rollout.routers.gatewayroute import GATEWAY_ROUTES, GatewayRouteRouter

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
SEED_MANIFEST = ROOT / "tests" / "fixtures" / "seed" / "recommendation-canary-gateway-route.yaml"
SEED_POLICY = ROOT / "policies" / "recommendations-canary.yaml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _apply_verbatim(kube: KubeClient) -> dict[str, Any]:
    manifest = yaml.safe_load(SEED_MANIFEST.read_text())
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    with contextlib.suppress(KubeNotFound):
        kube.delete(GATEWAY_ROUTES, namespace, name)
    return kube.create(GATEWAY_ROUTES, namespace, manifest)


def test_the_seed_manifest_verbatim_is_promoted_by_the_seed_policy(kube: KubeClient) -> None:
    stored = _apply_verbatim(kube)
    assert stored["spec"]["routeSpec"]["httpRoute"]["action"]["weightedTargets"][1]["weight"] == 10  # nothing pruned
    [loaded] = load_paths([SEED_POLICY]).rollouts
    policy = loaded.rollout
    ref = policy.spec.router.gateway_route
    assert ref is not None
    router = GatewayRouteRouter(kube, ref, policy.route_namespace(), policy.spec.stable, policy.spec.canary)
    assert router.get_weights() == Weights(10, 90)
    state, now = RolloutState(), T0
    counts = {arm: TargetCounters(0.0, 0.0, T0.timestamp()) for arm in ("canary", "stable")}
    visited = [10]
    for _ in range(600):
        live = router.get_weights()
        for arm, old in list(counts.items()):  # 100 req/s split by the live weights; 0.1% errors on both
            n = 100 * (live.canary if arm == "canary" else live.stable) / 100 * (now.timestamp() - old.at)
            counts[arm] = TargetCounters(old.requests + n, old.errors + n * 0.001, now.timestamp())
        reading = Reading(Outcome.OK, now, canary={"gw": counts["canary"]}, stable={"gw": counts["stable"]})
        decision = decide(policy, state, Observations(route=live, reading=reading), now)
        state = decision.state
        for action in decision.actions:
            if isinstance(action, SetWeights):
                written = router.set_weights(action.target, expected=action.expected)
                visited.append(written.canary)
        if state.phase.final:
            break
        at = next(a.at for a in decision.actions if isinstance(a, ScheduleNext))
        now = max(at, now + timedelta(seconds=1))
    assert state.phase is Phase.PROMOTED, state.message
    assert visited == [10, 5, 10, 25, 50, 100]
    after = kube.get(GATEWAY_ROUTES, "default", "recommendation-canary-gateway-route")
    targets = after["spec"]["routeSpec"]["httpRoute"]["action"]["weightedTargets"]
    assert [(t["virtualService"]["virtualServiceRef"]["name"], t["weight"]) for t in targets] == [
        ("recommendation-service-v1", 0),
        ("recommendation-service-v2", 100),
    ]
    for key in ("gatewayRouteName", "virtualGatewayRef"):
        assert after["spec"][key] == stored["spec"][key]
    assert after["spec"]["routeSpec"]["httpRoute"]["match"] == stored["spec"]["routeSpec"]["httpRoute"]["match"]
