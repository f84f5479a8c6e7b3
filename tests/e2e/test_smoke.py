"""Smoke: a healthy canary promotes through every step, driven by the daemon subprocess."""

from __future__ import annotations

import pytest

from rollout.kube.rollouts import ROLLOUTS
from tests.e2e.conftest import apply, fast_policy
from tests.harness.stack import Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]


def test_healthy_canary_promotes(stack: Stack, ns: str) -> None:
    daemon = stack.daemon(namespaces=[ns], ROLLOUT_LEADER__ENABLED="false")
    apply(stack, fast_policy(ns))
    assert stack.kube is not None

    def phase() -> str:
        return str(stack.kube.get(ROLLOUTS, ns, "recommendations").get("status", {}).get("phase"))  # type: ignore[union-attr]

    try:
        wait_until(lambda: phase() == "Promoted", timeout=90, what="Promoted")
    except TimeoutError:
        print(daemon.tail(60))
        raise
    assert stack.mesh is not None
    assert stack.mesh.weights(ns, "recommendation-canary-gateway-route") == {
        "recommendation-service-v1": 0,
        "recommendation-service-v2": 100,
    }
