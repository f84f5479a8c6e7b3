"""Smoke: a healthy canary promotes through every step, driven by the daemon subprocess, and shows
what it did (status with the verdict's numbers, Events, ``/metrics``, ``/readyz``); and the daemon's
idle CPU and memory with no active rollout."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DaemonFactory, apply, fast_policy
from tests.e2e.observing import (
    RouteRecorder,
    events,
    phase_is,
    proc_usage,
    record,
    wait_ready,
    wait_status,
)
from tests.harness.stack import CANARY, ROUTE, STABLE, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]


def test_healthy_canary_promotes(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    apply(stack, fast_policy(ns))
    try:
        final = wait_status(stack, ns, phase_is("Promoted"), timeout=120, what="Promoted", daemons=(daemon,))
    finally:
        route.stop()

    assert stack.mesh is not None
    assert stack.mesh.weights(ns, ROUTE) == {STABLE: 0, CANARY: 100}
    assert route.canaries() == [0, 20, 50, 100], "every step, in order, weights only ever increasing"
    assert route.sums() == {100}

    # The status carries the last verdict with its numbers.
    assert final["canaryWeight"] == 100 and final["stableWeight"] == 0
    verdict = final["state"]["verdict"]
    assert verdict["kind"] == "pass" and verdict["enoughData"] is True
    checks = {c["name"]: c for c in verdict["checks"]}
    assert {"errorRate", "latency"} <= set(checks)
    assert all(c["value"] is not None and c["limit"] is not None for c in checks.values())
    assert verdict["canary"]["requests"] > 0  # judged at 100%: stable served nothing at this step
    notified = final["state"]["notified"]
    assert len(notified) == len(set(notified)) and "promoted" in notified
    conditions = {c["type"]: c["status"] for c in final["conditions"]}
    assert conditions == {
        "PolicyValid": "True",
        "Completed": "True",
        "Succeeded": "True",
        "Progressing": "False",
        "Paused": "False",
        "Degraded": "False",
    }

    reasons = {e["reason"] for e in events(stack, ns)}
    assert {"Started", "Step", "Promoted"} <= reasons, reasons

    code, body = daemon.get("/readyz")
    assert code == 200, body
    code, metrics = daemon.get("/metrics")
    assert code == 200
    key = f'name="recommendations",namespace="{ns}"'
    assert f'rolloutd_rollout_info{{{key},phase="Promoted"}} 1.0' in metrics, metrics[:2000]
    assert f"rolloutd_rollout_canary_weight_ratio{{{key}}} 1.0" in metrics
    assert f"rolloutd_promotions_total{{{key}}} 1.0" in metrics


def test_idle_daemon_cpu_and_memory(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    """No Rollout in the watched namespace: what the daemon costs while it waits."""
    daemon = daemons(namespaces=[ns], name=f"{ns}-idle", ROLLOUT_RESYNC_SECONDS="30", ROLLOUT_LEADER__ENABLED="true")
    wait_ready(daemon)
    assert daemon.process is not None
    usage = proc_usage(daemon.process.pid, 10.0)
    record("idle_daemon", usage | {"resync_seconds": 30, "leader_election": True, "lease_renew_every_seconds": 2})
    assert daemon.running
