"""The control loop keeps the promises README, ``plan`` and ``simulate`` make, on the real stack:
every step is judged at its own weight (a fault that shows only at 50% is caught at the 50% step,
every time), timers fire on time whatever the analysis interval, a stream of odd commands never
stops an abort, ``kubectl wait`` and ``rollout status --watch`` answer "did it work?" with the right
exit codes, and a hand edit to stable 100% mid-run pauses the rollout and is never overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.core.states import CommandKind
from rollout.kube.commands import ROLLOUT_COMMANDS, command_body
from rollout.kube.rollouts import ROLLOUTS
from tests.e2e.conftest import DaemonFactory, apply, fast_policy, forget_namespace, new_namespace
from tests.e2e.observing import RouteRecorder, phase_is, record, set_route, wait_status
from tests.harness.kube import binaries_dir
from tests.harness.stack import CANARY, ROOT, ROUTE, STABLE, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]
TRIALS = 10
ADMIN_GROUPS = ["system:masters", "system:authenticated"]  # the harness's admin token, as authenticated


def _own_backends(stack: Stack, ns: str) -> tuple[str, str]:
    """A namespace with a route to backends of its own (so concurrent runs do not share traffic)."""
    stable, canary = f"{ns}-v1", f"{ns}-v2"
    for backend in (stable, canary):
        stack.exporter.set_backend(backend, rps=0.0, error_rate=0.001, latency_median_ms=20, latency_p99_ms=120)
    stack.add_route(ns, stable=stable)
    return stable, canary


def test_a_fault_that_shows_only_at_fifty_percent_is_caught_at_that_step_every_time(
    stack: Stack, daemons: DaemonFactory
) -> None:
    assert stack.mesh is not None
    namespaces = [new_namespace(stack, routes=()) for _ in range(TRIALS)]
    recorders = []
    for ns in namespaces:
        stable, canary = _own_backends(stack, ns)
        stack.mesh.faults[canary] = (50, 0.3, 0.001)  # fails 30% of its requests from 50% of the traffic on
        policy = fast_policy(ns)
        policy["spec"]["stable"], policy["spec"]["canary"] = stable, canary
        recorders.append(RouteRecorder(stack, ns, stable=stable, canary=canary).start())
        apply(stack, policy)
    daemon = daemons(namespaces=namespaces, name="fifty")
    try:
        finals = [
            wait_status(stack, ns, phase_is("RolledBack", "Promoted"), timeout=180, what="ended", daemons=(daemon,))
            for ns in namespaces
        ]
    finally:
        for recorder in recorders:
            recorder.stop()
        for ns in namespaces:
            forget_namespace(stack, ns)
    outcomes = [(f["phase"], f["state"]["step"] + 1, r.canaries()) for f, r in zip(finals, recorders, strict=True)]
    assert all(phase == "RolledBack" for phase, _, _ in outcomes), outcomes
    assert all(step == 2 for _, step, _ in outcomes), "rolled back at the 50% step (step 2 of 3)"
    assert all(canaries == [0, 20, 50, 0] for _, _, canaries in outcomes), outcomes
    record("fault_at_fifty_percent", {"trials": TRIALS, "rolled_back_at_step_2": TRIALS})


def test_a_ten_second_pause_with_a_thirty_second_interval_ends_on_time(
    stack: Stack, ns: str, daemons: DaemonFactory
) -> None:
    policy = fast_policy(ns, interval="30s", stepDuration="30s")
    policy["spec"]["steps"] = [{"setWeight": 20}, {"pause": {"duration": "10s"}}, {"setWeight": 100}]
    policy["spec"]["analysis"].pop("window")
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    apply(stack, policy)
    d = (daemon,)
    paused = wait_status(stack, ns, lambda s: s["state"]["step"] == 1, timeout=150, what="the pause", daemons=d)
    after = wait_status(stack, ns, lambda s: s["state"]["step"] == 2, timeout=60, what="past the pause", daemons=d)
    began = datetime.fromisoformat(paused["state"]["stepStartedAt"])
    ended = datetime.fromisoformat(after["state"]["stepStartedAt"])
    lasted = (ended - began).total_seconds()
    record("pause_10s_interval_30s_lasted_seconds", round(lasted, 3))
    assert 10.0 <= lasted <= 11.0, f"the 10s pause lasted {lasted:.2f}s"


@st.composite
def odd_commands(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Commands as people (or tools) might create them: any kind, odd reasons, stale refs, forged names."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(list(CommandKind)))
        body = command_body(
            "NS",
            "recommendations",
            kind,
            by=draw(st.sampled_from(["rollout-admin", "someone-else"])),  # a forged name is refused at admission
            groups=draw(st.sampled_from([[], ADMIN_GROUPS])),
            reason=draw(st.text(max_size=300)),
            ref=draw(st.sampled_from(["", "approval-0-1", "approval-stale-9"])),
        )
        out.append(body)
    return out


@given(batch=odd_commands())
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_stream_of_odd_commands_never_stops_an_abort(
    stack: Stack, daemons: DaemonFactory, batch: list[dict[str, Any]]
) -> None:
    assert stack.kube is not None
    ns = new_namespace(stack)
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    try:
        apply(stack, fast_policy(ns))
        route.wait(lambda stable, canary: canary == 20, timeout=90, what="20%")
        for body in batch:
            body["metadata"]["namespace"] = ns
            try:
                stack.kube.create(ROLLOUT_COMMANDS, ns, body)
            except Exception as e:  # refused at admission (forged name, groups) or by the schema
                refused = "forbidden" in str(e).lower() or "invalid" in str(e).lower()
                assert refused, e  # noqa: PT017 - the command is refused by the API server, never by a crash
        abort = command_body(ns, "recommendations", CommandKind.ABORT, by="rollout-admin", groups=ADMIN_GROUPS)
        stack.kube.create(ROLLOUT_COMMANDS, ns, abort)
        final = wait_status(stack, ns, phase_is("Aborted", "RolledBack"), timeout=60, what="aborted", daemons=(daemon,))
    finally:
        route.stop()
        forget_namespace(stack, ns)
    assert final["stableWeight"] == 100 and final["canaryWeight"] == 0
    assert stack.mesh is not None and stack.mesh.weights(ns, ROUTE) == {STABLE: 100, CANARY: 0}


def _kubectl(stack: Stack, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    kubectl = binaries_dir() / "kubectl"
    return subprocess.run(
        [str(kubectl), "--kubeconfig", str(stack.plane.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _status_watch(stack: Stack, ns: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(stack.plane.kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "rollout", "status", "recommendations", "-n", ns, "--watch", *extra],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
        env=env,
    )


def test_kubectl_wait_and_status_watch_answer_did_it_work(stack: Stack, daemons: DaemonFactory) -> None:
    assert stack.mesh is not None
    good, bad = new_namespace(stack, routes=()), new_namespace(stack, routes=())
    policies = {}
    for ns in (good, bad):
        stable, canary = _own_backends(stack, ns)
        policy = fast_policy(ns)
        policy["spec"]["stable"], policy["spec"]["canary"] = stable, canary
        policies[ns] = policy
    stack.mesh.faults[f"{bad}-v2"] = (0, 0.3, 0.3)
    daemon = daemons(namespaces=[good, bad], name="did-it-work")
    try:
        for policy in policies.values():
            apply(stack, policy)
        kind = ROLLOUTS.name
        target = f"{kind}/recommendations"
        promoted = _kubectl(stack, "wait", "-n", good, "--for=condition=Succeeded", target, "--timeout=180s")
        assert promoted.returncode == 0, promoted.stderr
        failed = _kubectl(stack, "wait", "-n", bad, "--for=condition=Succeeded=False", target, "--timeout=180s")
        assert failed.returncode == 0, failed.stderr
        not_ok = _kubectl(stack, "wait", "-n", bad, "--for=condition=Succeeded", target, "--timeout=3s")
        assert not_ok.returncode != 0
        assert _kubectl(stack, "wait", "-n", bad, "--for=condition=Completed", target).returncode == 0
        watched_good, watched_bad = _status_watch(stack, good), _status_watch(stack, bad)
        assert watched_good.returncode == 0, watched_good.stderr
        assert watched_bad.returncode == 1, watched_bad.stderr
        assert "\x1b" not in watched_good.stdout, "no escape codes into a pipe"
        assert "Promoted" in watched_good.stdout.splitlines()[-1]
    finally:
        for ns in (good, bad):
            forget_namespace(stack, ns)
    del daemon


def test_status_watch_times_out_with_exit_code_two(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    policy = fast_policy(ns)
    policy["spec"]["steps"] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]
    daemons(namespaces=[ns], name=f"{ns}-daemon")
    apply(stack, policy)
    started = time.monotonic()
    watched = _status_watch(stack, ns, "--timeout", "5")
    assert watched.returncode == 2, watched.stderr
    assert time.monotonic() - started < 60
    assert "timed out after 5s" in watched.stderr


def test_a_hand_edit_to_stable_100_mid_run_pauses_and_is_never_overwritten(
    stack: Stack, ns: str, daemons: DaemonFactory
) -> None:
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    apply(stack, fast_policy(ns))
    try:
        route.wait(lambda stable, canary: canary == 20, timeout=90, what="20%")
        set_route(stack, ns, stable=100, canary=0)
        edited = time.monotonic()
        paused = wait_status(
            stack, ns, lambda s: s["state"].get("pauseReason") == "Drift", timeout=30, what="Drift", daemons=(daemon,)
        )
        time.sleep(6)  # three more intervals: the daemon must leave the route alone
    finally:
        route.stop()
    assert paused["canaryWeight"] == 0 and paused["stableWeight"] == 100  # status shows what the route carries
    assert paused["desiredCanaryWeight"] == 20
    assert {(s, c) for at, s, c in route.readings if at > edited + 0.5} == {(100, 0)}
    assert stack.mesh is not None and stack.mesh.weights(ns, ROUTE) == {STABLE: 100, CANARY: 0}
