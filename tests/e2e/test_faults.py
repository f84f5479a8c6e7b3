"""Faults mid-rollout, on the real stack: an error spike and a latency regression roll back to
stable 100%; no canary traffic holds (and says why) until the progress deadline pauses it;
Prometheus stopped holds, then follows ``analysis.unavailable``.

The time from an error spike to the route carrying stable 100% is measured and recorded with
the interval and scrape settings used (``tests/e2e/observing.py`` REPORT)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import DaemonFactory, apply, fast_policy
from tests.e2e.observing import RouteRecorder, StatusRecorder, events, phase_is, record, status, wait_status
from tests.harness.stack import CANARY, Daemon, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]
STEPS = [20, 40, 60, 80, 100]
HEALTHY = {"error_rate": 0.001, "latency_median_ms": 20.0, "latency_p99_ms": 120.0}


@pytest.fixture(autouse=True)
def healthy_again(stack: Stack) -> Iterator[None]:
    """Whatever a test breaks (canary profile, mesh, Prometheus) is healthy again for the next, and
    the last of its canary requests are scraped before the next test starts: the canary backend is
    the same in every test, so a request scraped after the next run's first reading would be that
    run's first interval (a latency test judged on the error spike before it)."""
    yield
    stack.exporter.set_backend(CANARY, **HEALTHY)
    assert stack.mesh is not None and stack.prometheus is not None
    stack.mesh.canary_traffic = True
    stack.prometheus.start()
    time.sleep(3 * float(stack.prometheus.scrape_interval.rstrip("s")))


def settings_used(stack: Stack) -> dict[str, object]:
    assert stack.prometheus is not None
    return {
        "interval_seconds": 2,
        "window_seconds": 6,
        "step_duration_seconds": 6,
        "prometheus_scrape_seconds": float(stack.prometheus.scrape_interval.rstrip("s")),
        "route_poll_seconds": 0.2,
        "mesh_period_seconds": 0.2,
    }


def test_error_spike_at_step_rolls_back(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    policy = fast_policy(ns)
    policy["spec"]["steps"] = [{"setWeight": w} for w in STEPS]
    apply(stack, policy)
    try:
        route.wait(lambda stable, canary: canary == 40, timeout=90, what="step 2 (40%) on the route")
        stack.exporter.set_backend(CANARY, error_rate=0.3)
        spiked = time.monotonic()
        final = wait_status(stack, ns, phase_is("RolledBack"), timeout=90, what="RolledBack", daemons=(daemon,))
        ended = time.monotonic()
    finally:
        route.stop()

    print_actions(daemon)
    assert final["canaryWeight"] == 0 and final["stableWeight"] == 100
    restored = route.first_at(lambda stable, canary: stable == 100, after=spiked)
    assert restored is not None, route.canaries()
    canaries = route.canaries()
    assert canaries[-1] == 0 and canaries[:-1] == [0, *STEPS[: len(canaries) - 2]], canaries
    assert max(canaries) <= 60, "at most one more step after the spike, never promoted"
    assert route.sums() == {100}
    verdict = final["state"]["verdict"]
    assert verdict["kind"] == "fail"
    error_check = next(c for c in verdict["checks"] if c["name"] == "errorRate")
    assert error_check["verdict"] == "fail" and "canary" in error_check["detail"], error_check
    # The canary/stable ratio; null when stable had no error at all (an infinite ratio, "inf" in the detail).
    assert error_check["value"] is None or error_check["value"] > error_check["limit"], error_check
    assert "RolledBack" in {e["reason"] for e in events(stack, ns)}
    record(
        "rollback_after_error_spike",
        {
            "spike_to_stable_100_route_seconds": round(restored - spiked, 2),
            "spike_to_status_rolled_back_seconds": round(ended - spiked, 2),
            "error_rate": 0.3,
            "spike_at_canary_weight": 40,
            "highest_canary_weight": max(canaries),
            **settings_used(stack),
        },
    )


def print_actions(daemon: Daemon) -> None:
    """The daemon's log apart from its per-tick decision lines (visible with ``-s``)."""
    for line in daemon.logs():
        if line.get("event") != "rollout.decision" or line.get("phase") in ("RollingBack", "RolledBack"):
            print({k: str(v)[:160] for k, v in line.items() if k not in ("logger",)})


def test_latency_regression_rolls_back(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    apply(stack, fast_policy(ns))
    try:
        route.wait(lambda stable, canary: canary == 20, timeout=90, what="step 1 (20%) on the route")
        stack.exporter.set_backend(CANARY, latency_median_ms=400.0, latency_p99_ms=900.0)
        slowed = time.monotonic()
        final = wait_status(stack, ns, phase_is("RolledBack"), timeout=90, what="RolledBack", daemons=(daemon,))
    finally:
        route.stop()

    assert final["stableWeight"] == 100
    assert route.canaries()[-1] == 0 and max(route.canaries()) <= 50
    latency = next(c for c in final["state"]["verdict"]["checks"] if c["name"] == "latency")
    assert latency["verdict"] == "fail", final["state"]["verdict"]
    restored = route.first_at(lambda stable, canary: stable == 100, after=slowed)
    assert restored is not None
    record("rollback_after_latency_regression_seconds", round(restored - slowed, 2))


def test_no_canary_traffic_holds_then_pauses_at_deadline(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    assert stack.mesh is not None
    stack.mesh.canary_traffic = False
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    policy = fast_policy(ns)
    policy["spec"]["progressDeadline"] = "15s"
    apply(stack, policy)
    try:
        holding = wait_status(
            stack,
            ns,
            lambda s: s.get("canaryWeight") == 20 and (s.get("state") or {}).get("verdict"),
            timeout=60,
            what="a first verdict at 20%",
            daemons=(daemon,),
        )
        final = wait_status(stack, ns, phase_is("Paused"), timeout=60, what="Paused", daemons=(daemon,))
    finally:
        route.stop()

    print(f"holding: {holding['message']}\npaused: {final['message']}")
    verdict = holding["state"]["verdict"]
    assert verdict["kind"] != "fail" and verdict["enoughData"] is False
    assert holding["phase"] == "Progressing"
    assert "request" in holding["message"].lower() or "data" in holding["message"].lower(), holding["message"]
    assert final["state"]["pauseReason"] == "ProgressDeadline"
    assert "progressDeadline" in final["message"]
    assert route.canaries() == [0, 20], "never more canary traffic without data, never promoted"
    assert "Deadline" in {e["reason"] for e in events(stack, ns)}


def test_prometheus_down_rolls_back_when_policy_says_so(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    assert stack.prometheus is not None
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    statuses = StatusRecorder(stack, ns).start()
    apply(stack, fast_policy(ns, unavailable={"action": "rollback", "after": "10s"}))
    try:
        route.wait(lambda stable, canary: canary == 20, timeout=90, what="step 1 (20%) on the route")
        stopping = time.monotonic()
        stack.prometheus.stop()
        final = wait_status(stack, ns, phase_is("RolledBack"), timeout=90, what="RolledBack", daemons=(daemon,))
    finally:
        route.stop()
        statuses.stop()
    print_actions(daemon)
    held = [s for s in statuses.seen if s[1] == "Progressing" and s[4]]
    assert held, f"held (unavailableSince set) before rolling back: {statuses.seen}"
    assert all(s[2] == held[0][2] for s in held), "no weight change while metrics are unavailable"
    assert final["stableWeight"] == 100
    assert "metrics unavailable" in final["state"]["endReason"], final["state"]["endReason"]
    restored = route.first_at(lambda stable, canary: stable == 100, after=stopping)
    assert restored is not None
    record(
        "prometheus_down_rollback",
        {
            "unavailable_after_seconds": 10,
            "stop_to_first_hold_status_seconds": round(held[0][0] - stopping, 2),
            "stop_to_stable_100_route_seconds": round(restored - stopping, 2),
        },
    )
    said = [s[3] for s in held if "metrics unavailable" in s[3]]
    assert said, f"the status message says why it holds: {[s[3] for s in held]}"


def test_prometheus_down_holds_then_promotes_when_back(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    assert stack.prometheus is not None
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    statuses = StatusRecorder(stack, ns).start()
    apply(stack, fast_policy(ns))
    try:
        route.wait(lambda stable, canary: canary == 20, timeout=90, what="step 1 (20%) on the route")
        stack.prometheus.stop()
        held = wait_status(
            stack,
            ns,
            lambda s: (s.get("state") or {}).get("unavailableSince"),
            timeout=60,
            what="holding on unavailable metrics",
            daemons=(daemon,),
        )
        time.sleep(8)  # more ticks without metrics: still holding at the same weight
        still = status(stack, ns)
        assert still["phase"] == "Progressing" and still["state"]["unavailableSince"]
        assert still["canaryWeight"] == held["canaryWeight"]
        stack.prometheus.start()
        final = wait_status(stack, ns, phase_is("Promoted"), timeout=120, what="Promoted", daemons=(daemon,))
    finally:
        route.stop()
        statuses.stop()
    assert final["canaryWeight"] == 100
    canaries = route.canaries()
    assert canaries == sorted(canaries) and canaries[-1] == 100, canaries
    assert not [s for s in statuses.seen if s[1] in ("RollingBack", "RolledBack")], "the default is to hold"
    messages = [s[3] for s in statuses.seen if s[4]]
    assert any("metrics unavailable" in m for m in messages), f"the status message says why it holds: {messages}"
