"""Two daemons with leader election on one Lease: only the leader writes; after SIGKILL of the
leader the standby takes over (measured) and the rollout goes on; SIGTERM of the leader releases
the lease so the standby takes over in about one retry period (measured)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import DaemonFactory, apply, fast_policy
from tests.e2e.observing import (
    RouteRecorder,
    daemon_log_events,
    events,
    lease_holder,
    phase_is,
    record,
    wait_ready,
    wait_status,
)
from tests.harness.stack import Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]
STEPS = [10, 20, 30, 40, 50, 60, 80, 100]
LEASE, RENEW, RETRY = 6.0, 4.0, 1.0


def test_only_the_leader_writes_and_the_standby_takes_over(stack: Stack, ns: str, daemons: DaemonFactory) -> None:
    lease = f"lease-{ns}"
    env = {
        "ROLLOUT_LEADER__ENABLED": "true",
        "ROLLOUT_LEADER__NAME": lease,
        "ROLLOUT_LEADER__LEASE_SECONDS": str(LEASE),
        "ROLLOUT_LEADER__RENEW_DEADLINE_SECONDS": str(RENEW),
        "ROLLOUT_LEADER__RETRY_SECONDS": str(RETRY),
    }
    a = daemons(namespaces=[ns], name=f"{ns}-a", **env)
    wait_until(lambda: lease_holder(stack, lease) == a.name, timeout=60, what="a holds the lease")
    b = daemons(namespaces=[ns], name=f"{ns}-b", **env)
    wait_ready(b)
    route = RouteRecorder(stack, ns).start()
    policy = fast_policy(ns, stepDuration="4s")
    policy["spec"]["steps"] = [{"setWeight": w} for w in STEPS]
    apply(stack, policy)
    try:
        route.wait(lambda stable, canary: canary == 30, timeout=120, what="30% under a")
        # Only the leader wrote: the lease, the daemons' logs, the Events' reporting instance.
        assert lease_holder(stack, lease) == a.name
        assert daemon_log_events(a, "rollout.weights")
        assert not daemon_log_events(b, "rollout.weights") and not daemon_log_events(b, "rollout.decision")
        assert {e.get("reportingInstance") for e in events(stack, ns)} == {a.name}

        a.kill()
        killed = time.monotonic()
        wait_until(lambda: lease_holder(stack, lease) == b.name, timeout=4 * LEASE, interval=0.1, what="b leads")
        took_over = time.monotonic()
        before = route.readings[-1][2]
        moved = route.wait(
            lambda stable, canary: canary > before, timeout=60, what="b moves the rollout on", after=took_over
        )
        assert daemon_log_events(b, "rollout.weights")

        a.start()  # back as the standby
        wait_ready(a)
        terminated = time.monotonic()
        assert b.terminate(timeout=30) == 0
        b_exited = time.monotonic()
        wait_until(lambda: lease_holder(stack, lease) == a.name, timeout=4 * LEASE, interval=0.1, what="a leads")
        handed_over = time.monotonic()
        final = wait_status(stack, ns, phase_is("Promoted"), timeout=180, what="Promoted", daemons=(a, b))
    finally:
        route.stop()

    assert final["canaryWeight"] == 100
    assert route.canaries() == [0, *STEPS], "no step lost or repeated across two leader changes"
    assert route.sums() == {100}
    assert {e.get("reportingInstance") for e in events(stack, ns)} == {a.name, b.name}
    assert any(line.get("event") == "rollout.lease-released" for line in b.logs())
    record(
        "leader_failover",
        {
            "lease_renew_retry_seconds": [LEASE, RENEW, RETRY],
            "sigkill_to_standby_holds_lease_seconds": round(took_over - killed, 2),
            "sigkill_to_next_weight_change_seconds": round(moved - killed, 2),
            "sigterm_to_standby_holds_lease_seconds": round(handed_over - terminated, 2),
            "sigterm_to_process_exit_seconds": round(b_exited - terminated, 2),
        },
    )
    # Hang guards only (the numbers are recorded above): the lease must change hands at all.
    assert took_over - killed < 2 * LEASE + 2 * RETRY
    assert handed_over - b_exited < LEASE
