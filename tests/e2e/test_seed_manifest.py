"""The seed's canary GatewayRoute applied verbatim (``spec.gatewayRouteName``,
``spec.virtualGatewayRef``, ``spec.routeSpec.httpRoute.action.weightedTargets``, to the CRD fixture
that keeps that layout) is promoted by the seed policy (``policies/recommendations-canary.yaml``,
its durations compressed as ``make demo`` does) driven by the daemon on the real stack; nothing but
the two weights changes on the route."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rollout.errors import KubeNotFound
from rollout.policy.loading import load_paths
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from tests.e2e.conftest import DaemonFactory, apply
from tests.e2e.observing import RouteRecorder, phase_is, wait_status
from tests.harness.demo import compressed
from tests.harness.mesh import MeshRoute
from tests.harness.stack import ROOT, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]

SEED_MANIFEST = ROOT / "tests" / "fixtures" / "seed" / "recommendation-canary-gateway-route.yaml"
SEED_POLICY = ROOT / "policies" / "recommendations-canary.yaml"
SPEED = 6.0  # the seed policy's durations divided by this, as in `make demo`


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The fixture-CRD stack with enough traffic for the seed's 5% step to be judged in seconds."""
    with Stack(total_rps=2000.0) as s:
        yield s


def test_the_seed_manifest_verbatim_is_promoted_by_the_seed_policy(stack: Stack, daemons: DaemonFactory) -> None:
    assert stack.kube is not None and stack.mesh is not None
    manifest = yaml.safe_load(Path(SEED_MANIFEST).read_text())
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    with contextlib.suppress(KubeNotFound):
        stack.kube.delete(GATEWAY_ROUTES, namespace, name)
    stored = stack.kube.create(GATEWAY_ROUTES, namespace, manifest)
    assert stored["spec"] == manifest["spec"], "the CRD keeps the seed's layout as written"
    route = MeshRoute(namespace, name)
    stack.mesh.routes.append(route)
    recorder = RouteRecorder(stack, namespace, name).start()
    [loaded] = load_paths([SEED_POLICY]).rollouts
    daemon = daemons(namespaces=[namespace], name="seed-daemon")
    try:
        apply(stack, compressed(loaded.rollout, SPEED))
        final = wait_status(
            stack,
            namespace,
            phase_is("Promoted"),
            timeout=420,
            what="Promoted",
            name=loaded.rollout.metadata.name,
            daemons=(daemon,),
        )
    finally:
        recorder.stop()
        stack.mesh.routes.remove(route)
    assert final["canaryWeight"] == 100
    assert recorder.canaries() == [10, 5, 10, 25, 50, 100], "the seed's 90/10 first, then every step in order"
    after = stack.kube.get(GATEWAY_ROUTES, namespace, name)
    targets = after["spec"]["routeSpec"]["httpRoute"]["action"]["weightedTargets"]
    assert [(t["virtualService"]["virtualServiceRef"]["name"], t["weight"]) for t in targets] == [
        ("recommendation-service-v1", 0),
        ("recommendation-service-v2", 100),
    ]
    for target in targets:
        target.pop("weight")
    for target in manifest["spec"]["routeSpec"]["httpRoute"]["action"]["weightedTargets"]:
        target.pop("weight")
    assert after["spec"] == manifest["spec"], "nothing but the two weights changed"
