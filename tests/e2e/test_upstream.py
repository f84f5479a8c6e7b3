"""The daemon on a cluster with the real upstream App Mesh GatewayRoute CRD, whose action has a single
``target`` and prunes ``weightedTargets``: the write cannot land, so the status never claims a canary
weight the route does not have; the run pauses once with the reason, as a condition and one Event."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollout.errors import KubeError
from rollout.kube.client import KubeClient, Resource
from rollout.kube.rollouts import ROLLOUTS
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from tests.e2e.conftest import fast_policy
from tests.harness.kube import ControlPlane, free_port, upstream_crds_dir
from tests.harness.stack import COMMANDS_CRD, ROLLOUT_CRD, ROUTE, STABLE, Daemon, install_admission_policy, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube]
NS = "upstream"
EVENTS = Resource("events.k8s.io", "v1", "events", "Event")


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    crds = upstream_crds_dir()
    if crds is None:
        pytest.skip("../shared/crds (the upstream CRDs) is not present next to this clone")
    with ControlPlane(name="rollout-upstream-e2e") as cp:
        cp.apply_crds([ROLLOUT_CRD, COMMANDS_CRD, crds / "appmesh.k8s.aws_gatewayroutes.yaml"])
        install_admission_policy(cp, daemon="rollout-admin")
        cp.create_namespace(NS)
        yield cp


def _route() -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "GatewayRoute",
        "metadata": {"name": ROUTE},
        "spec": {
            "httpRoute": {
                "match": {"prefix": "/recommendations"},
                "action": {"target": {"virtualService": {"virtualServiceRef": {"name": STABLE}}}},
            }
        },
    }


def test_status_never_claims_a_weight_the_upstream_route_cannot_hold(plane: ControlPlane, tmp_path: Path) -> None:
    kube = KubeClient.from_kubeconfig(str(plane.kubeconfig))
    kube.create(GATEWAY_ROUTES, NS, _route())
    before = kube.get(GATEWAY_ROUTES, NS, ROUTE)
    env = {
        "ROLLOUT_KUBE__KUBECONFIG": str(plane.kubeconfig),
        "ROLLOUT_PROMETHEUS__URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: no verdict needed
        "ROLLOUT_PORT": str(free_port()),
        "ROLLOUT_HOST": "127.0.0.1",
        "ROLLOUT_WATCH_NAMESPACES": NS,
        "ROLLOUT_RESYNC_SECONDS": "2",
        "ROLLOUT_LOG_FORMAT": "json",
        "ROLLOUT_LEADER__ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    daemon = Daemon(env, tmp_path).start()
    seen: list[int] = []
    stop = threading.Event()

    def watch_status() -> None:
        while not stop.is_set():
            with contextlib.suppress(KubeError):  # not created yet: read again shortly
                status = kube.get(ROLLOUTS, NS, "recommendations").get("status") or {}
                if "canaryWeight" in status:
                    seen.append(int(status["canaryWeight"]))
            stop.wait(0.1)

    watcher = threading.Thread(target=watch_status, daemon=True)
    watcher.start()
    try:
        kube.create(ROLLOUTS, NS, fast_policy(NS))
        status = wait_until(
            lambda: (s := kube.get(ROLLOUTS, NS, "recommendations").get("status") or {}).get("phase") == "Paused" and s,
            timeout=60,
            what="Paused on the route error",
        )
        time.sleep(4)  # two more intervals: nothing is retried as if the error were transient
        after = kube.get(ROLLOUTS, NS, "recommendations")["status"]
    finally:
        stop.set()
        watcher.join(timeout=5)
        daemon.terminate()
    assert seen and set(seen) == {0}, f"the status claimed canary weights {sorted(set(seen))}"
    assert status["state"]["pauseReason"] == "RouteError" and "weightedTargets" in status["state"]["pauseDetail"]
    assert (status["canaryWeight"], status["desiredCanaryWeight"]) == (0, 20)
    degraded = next(c for c in after["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RouteWriteFailed")
    failures = [e for e in kube.list(EVENTS, NS) if e.get("reason") == "RouteWriteFailed"]
    assert len(failures) == 1, failures
    assert kube.get(GATEWAY_ROUTES, NS, ROUTE)["spec"] == before["spec"], "the route is untouched"
    kube.close()
