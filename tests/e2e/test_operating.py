"""What people do to a running rollout, on the real stack: weights edited by hand (drift: paused,
reported, not overwritten, restored by ``rollout resume``); the operator CLI (pause, resume,
approve, abort, retry, promote --full) run as a subprocess with the admin's credentials; a policy
directory where a file turns invalid; and a Rollout object pydantic rejects but the CRD accepts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import DaemonFactory, apply, fast_policy, forget_namespace, new_namespace
from tests.e2e.observing import (
    RouteRecorder,
    StatusRecorder,
    cli,
    commands,
    daemon_log_events,
    events,
    phase_is,
    record,
    rollout,
    set_route,
    status,
    wait_status,
)
from tests.harness.stack import CANARY, ROUTE, STABLE, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]
ADMIN = "rollout-admin"  # the user of the control plane's admin token


def test_hand_edited_weights_are_drift(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    apply(stack, fast_policy(ns))
    try:
        route.wait(lambda stable, canary: canary == 20, timeout=90, what="20%")
        set_route(stack, ns, stable=70, canary=30)
        edited = time.monotonic()
        paused = wait_status(
            stack,
            ns,
            lambda s: s.get("phase") == "Paused" and s["state"].get("pauseReason") == "Drift",
            timeout=30,
            what="Paused for drift",
            daemons=(daemon,),
        )
        detected = time.monotonic()
        time.sleep(5)  # at least two more ticks: the daemon must leave the route alone
        assert stack.mesh is not None
        assert stack.mesh.weights(ns, ROUTE) == {STABLE: 70, CANARY: 30}
        assert {(s, c) for at, s, c in route.readings if at > edited + 0.5} == {(70, 30)}
        assert "Drift" in {e["reason"] for e in events(stack, ns)}
        assert "30" in paused["message"] and "rollout resume" in paused["message"]

        cli(stack, "resume", "recommendations", "-n", ns)
        resumed = time.monotonic()
        # The hand-made 30% is gone: rollout's 20% is written back (it may go on to the next step at once).
        restored = route.wait(lambda stable, canary: canary != 30, timeout=30, what="no more 30%", after=resumed)
        final = wait_status(stack, ns, phase_is("Promoted"), timeout=120, what="Promoted", daemons=(daemon,))
    except TimeoutError:
        print(daemon.tail(40))
        raise
    finally:
        route.stop()
    assert final["canaryWeight"] == 100
    rewritten = [w for w in daemon_log_events(daemon, "rollout.weights") if w.get("purpose") == "reapply"]
    assert [(w["stable"], w["canary"]) for w in rewritten] == [(80, 20)], rewritten
    after = [c for at, _, c in route.readings if at >= restored]
    assert set(after) <= {20, 50, 100} and after == sorted(after), "only rollout's own weights after resume"
    record(
        "drift",
        {
            "edit_to_paused_status_seconds": round(detected - edited, 2),
            "resume_to_weights_restored_seconds": round(restored - resumed, 2),
        },
    )


def test_operator_commands_through_the_cli(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    statuses = StatusRecorder(stack, ns).start()
    policy = fast_policy(ns)
    policy["spec"]["steps"] = [
        {"setWeight": 20},
        {"pause": {}},
        {"setWeight": 40},
        {"approval": {}},
        {"setWeight": 60},
        {"pause": {}},
        {"setWeight": 100},
    ]
    apply(stack, policy)
    name, d = "recommendations", (daemon,)
    try:
        route.wait(lambda stable, canary: canary == 20, timeout=90, what="20%")
        cli(stack, "pause", name, "-n", ns, "--reason", "looking at dashboards")
        paused = wait_status(stack, ns, phase_is("Paused"), timeout=30, what="Paused", daemons=d)
        assert paused["state"]["pauseReason"] == "Manual", paused["state"]
        assert ADMIN in paused["state"]["pauseDetail"] and "looking at dashboards" in paused["state"]["pauseDetail"]

        cli(stack, "resume", name, "-n", ns)
        wait_status(
            stack, ns, lambda s: s["state"].get("pauseReason") == "PauseStep", timeout=60, what="pause step", daemons=d
        )
        cli(stack, "resume", name, "-n", ns)
        wait_status(stack, ns, phase_is("AwaitingApproval"), timeout=60, what="AwaitingApproval", daemons=d)
        # the gate holds at 40% (read from the route itself; the recorder may lag on a loaded machine)
        assert stack.mesh is not None and stack.mesh.weights(ns, ROUTE)[CANARY] == 40
        cli(stack, "approve", name, "-n", ns)
        wait_status(
            stack,
            ns,
            lambda s: s["canaryWeight"] == 60 and s["state"].get("pauseReason") == "PauseStep",
            timeout=60,
            what="the pause step at 60% after the approval",
            daemons=d,
        )

        cli(stack, "abort", name, "-n", ns, "--reason", "e2e")
        aborted = wait_status(stack, ns, phase_is("Aborted"), timeout=30, what="Aborted", daemons=d)
        assert aborted["stableWeight"] == 100 and aborted["state"]["abortedBy"] == ADMIN
        assert stack.mesh is not None and stack.mesh.weights(ns, ROUTE) == {STABLE: 100, CANARY: 0}

        cli(stack, "retry", name, "-n", ns)
        retried = time.monotonic()
        route.wait(lambda stable, canary: canary == 20, timeout=60, what="20% again after retry", after=retried)
        cli(stack, "promote", name, "-n", ns, "--full")
        final = wait_status(stack, ns, phase_is("Promoted"), timeout=60, what="Promoted", daemons=d)
    finally:
        route.stop()
        statuses.stop()
    assert final["canaryWeight"] == 100 and stack.mesh.weights(ns, ROUTE) == {STABLE: 0, CANARY: 100}
    assert final["state"]["endReason"] == f"promoted by {ADMIN}, gates skipped"
    canaries = route.canaries()
    assert canaries == [0, 20, 40, 60, 0, 20, 100], canaries
    handled = [c.get("status", {}).get("phase") for c in commands(stack, ns)]
    assert handled and set(handled) == {"Accepted"}, handled  # every command acknowledged, none refused
    # Who approved is in the status for the rest of that run (state.approvals: "step N: who").
    said = {a for *_, a in statuses.seen if a}
    assert f"step 4: {ADMIN}" in said, f"the status shows who approved: {said}"


def test_invalid_policy_file_changes_nothing(stack: Stack, daemons: DaemonFactory, tmp_path: Path) -> None:
    ns = new_namespace(stack, routes=(ROUTE, "route-b"))
    policies = tmp_path / "policies"
    policies.mkdir()
    alpha = fast_policy(ns, "alpha", stepDuration="4s")
    alpha["spec"]["steps"] = [{"setWeight": w} for w in (10, 20, 30, 40, 60, 100)]
    beta = fast_policy(ns, "beta")
    beta["spec"]["router"] = {"gatewayRoute": {"name": "route-b"}}
    (policies / "alpha.yaml").write_text(yaml.safe_dump(alpha, sort_keys=False))
    (policies / "beta.yaml").write_text(yaml.safe_dump(beta, sort_keys=False))
    daemon = daemons(
        namespaces=[ns], name=f"{ns}-daemon", ROLLOUT_POLICY_DIR=str(policies), ROLLOUT_POLICY_POLL_SECONDS="1"
    )
    try:
        wait_status(stack, ns, lambda s: s.get("canaryWeight", 0) >= 10, timeout=60, what="alpha runs", name="alpha")
        before = rollout(stack, ns, "alpha")
        bad = yaml.safe_load(yaml.safe_dump(alpha))
        bad["spec"]["steps"][1] = {"setWeight": 150}
        (policies / "alpha.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
        logged = wait_until(
            lambda: daemon_log_events(daemon, "rollout.policy-invalid"), timeout=30, what="the error logged"
        )
        wait_until(
            lambda: "InvalidPolicyFile" in {e["reason"] for e in events(stack, ns, "alpha")},
            timeout=30,
            what="an InvalidPolicyFile Event on alpha",
        )
        finals = {
            n: wait_status(stack, ns, phase_is("Promoted"), timeout=150, what="Promoted", name=n, daemons=(daemon,))
            for n in ("beta", "alpha")
        }
    finally:
        forget_namespace(stack, ns)
    after = rollout(stack, ns, "alpha")
    assert after["spec"] == before["spec"] and after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["steps"][1] == {"setWeight": 20}
    line = logged[0]
    assert line["file"].endswith("alpha.yaml") and int(line["line"]) > 0, line
    assert "steps" in str(line["field"]) and "150" in str(line.get("error", "")) + str(line["field"]), line
    assert finals["beta"]["canaryWeight"] == 100 and finals["alpha"]["canaryWeight"] == 100


def test_rollout_object_pydantic_rejects_moves_no_traffic(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    policy = fast_policy(ns)
    policy["spec"]["analysis"]["slos"]["errorRate"]["max"] = "banana"
    apply(stack, policy)  # the CRD leaves this field untyped: the API server accepts it
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    route = RouteRecorder(stack, ns).start()
    try:
        invalid = wait_status(
            stack,
            ns,
            lambda s: {c["type"]: c["status"] for c in s.get("conditions", [])}.get("PolicyValid") == "False",
            timeout=60,
            what="PolicyValid=False",
            daemons=(daemon,),
        )
        wait_until(
            lambda: "InvalidSpec" in {e["reason"] for e in events(stack, ns)}, timeout=30, what="InvalidSpec Event"
        )
        time.sleep(4)  # two more ticks
    finally:
        route.stop()
    assert "banana" in invalid["message"] or "errorRate" in invalid["message"], invalid["message"]
    assert route.canaries() == [0] and route.sums() == {100}, "no traffic moved"
    assert status(stack, ns).get("phase") == "Invalid"
    assert daemon_log_events(daemon, "rollout.invalid")
