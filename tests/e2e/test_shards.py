"""Three daemon replicas share 300 rollouts in three shards, each shard led through its own Lease.
One replica is killed (SIGKILL): its shard's Lease is taken over by a survivor and every rollout of
that shard is written again by its new owner within 15 s, and no rollout is ever judged or written
by two replicas. Evidence from outside the daemons: the API server's audit log of every status and
route write, per replica (each runs as its own user); and from the daemons' own logs: every
decision (DEBUG) with the replica that took it.

Lease 6 s / renew deadline 4 s / retry 0.8 s: the production ratios (15 / 10 / 2), shorter."""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from rollout.runtime.leadership import shard_of
from tests.e2e.observing import LEASES, record
from tests.harness.audit import AuditedRequest
from tests.harness.fleet import NAMESPACE, POOL, Fleet
from tests.harness.stack import Daemon, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus, pytest.mark.timeout(600)]

N, SHARDS = 300, 3
LEASE, RENEW, RETRY = 6.0, 4.0, 0.8
REPLICAS = ("replica-a", "replica-b", "replica-c")
SLACK = 0.5  # seconds: audit and log timestamps are taken by different processes


def policy(i: int) -> dict[str, Any]:
    """5% steps every ~12 s (route writes all along), judged every 2 s by the threshold judge."""
    pair = i % POOL
    return {
        "apiVersion": "delivery.rollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": f"r{i}", "namespace": NAMESPACE},
        "spec": {
            "router": {"gatewayRoute": {"name": f"route-{i}"}},
            "stable": f"svc{pair}-v1",
            "canary": f"svc{pair}-v2",
            "steps": [{"setWeight": w} for w in range(5, 101, 5)],
            "analysis": {
                "interval": "2s",
                "stepDuration": "12s",
                "judge": "threshold",
                "slos": {"errorRate": {"max": "5%"}},
                "minRequests": 20,
            },
            "progressDeadline": "1h",
        },
    }


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(N, 2.0, users=REPLICAS) as f:
        yield f


def holders(fleet: Fleet) -> dict[int, str]:
    assert fleet.kube is not None
    out = {}
    for shard in range(SHARDS):
        try:
            lease = fleet.kube.get(LEASES, "rollout-system", f"rollout-daemon-shard-{shard}")
        except Exception:  # not created yet
            continue
        out[shard] = str((lease.get("spec") or {}).get("holderIdentity") or "")
    return out


def decisions(daemon: Daemon) -> dict[str, list[float]]:
    """When this replica decided for each rollout (its own log, DEBUG included)."""
    out: dict[str, list[float]] = defaultdict(list)
    for line in daemon.log_file.read_text(errors="replace").splitlines():
        if '"rollout.decision"' not in line:
            continue
        entry = json.loads(line)
        when = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
        out[entry["rollout"]].append(when)
    return out


def rollout_of(request: AuditedRequest) -> str:
    name = request.name.removeprefix("route-")
    return f"{NAMESPACE}/{name if request.resource == 'rollouts' else 'r' + name}"


def test_a_killed_replicas_shard_is_taken_over_and_no_rollout_has_two_writers(fleet: Fleet) -> None:
    fleet.create(policy)
    env = {
        "ROLLOUT_LEADER__ENABLED": "true",
        "ROLLOUT_LEADER__SHARDS": str(SHARDS),
        "ROLLOUT_LEADER__EXPECTED_REPLICAS": str(len(REPLICAS)),
        "ROLLOUT_LEADER__LEASE_SECONDS": str(LEASE),
        "ROLLOUT_LEADER__RENEW_DEADLINE_SECONDS": str(RENEW),
        "ROLLOUT_LEADER__RETRY_SECONDS": str(RETRY),
        "ROLLOUT_LOG_LEVEL": "DEBUG",  # every decision is logged, quiet ones too
        "ROLLOUT_STATUS_FLUSH_SECONDS": "8",  # and every rollout's status is written every ~8 s
    }
    replicas = {name: fleet.daemon(name, user=name, **env) for name in REPLICAS}
    wait_until(lambda: len(set(holders(fleet).values()) - {""}) == SHARDS, timeout=90, what="one shard per replica")
    wait_until(
        lambda: sum(n for phase, n in fleet.phases().items() if phase.startswith("Progressing@")) == N,
        timeout=180,
        interval=2,
        what="every run started",
    )
    time.sleep(15)  # every rollout judged and written a few times under its first owner

    owner = holders(fleet)
    victim = owner[0]
    replicas[victim].kill()
    killed = time.time()
    survivors = set(REPLICAS) - {victim}
    lease_taken = wait_until(
        lambda: holders(fleet).get(0) in survivors and time.time(), timeout=4 * LEASE, interval=0.1, what="shard 0"
    )
    orphans = {f"{NAMESPACE}/r{i}" for i in range(N) if shard_of(f"{NAMESPACE}/r{i}", SHARDS) == 0}

    def rewritten() -> dict[str, float] | None:
        first: dict[str, float] = {}
        for r in fleet.audit.since(killed):
            if r.write and r.user in survivors and r.resource in ("rollouts", "gatewayroutes"):
                first.setdefault(rollout_of(r), r.received)
        return first if orphans <= first.keys() else None

    first_after = wait_until(rewritten, timeout=60, interval=0.5, what="every rollout of shard 0 written again")
    time.sleep(10)  # the survivors carry on for a while
    new_owner = holders(fleet)[0]
    for name in survivors:
        assert replicas[name].terminate(timeout=30) == 0

    # --- the audit log: who wrote each rollout's status and route, when ---------------------------
    writes: dict[str, list[AuditedRequest]] = defaultdict(list)
    for r in fleet.audit.read():
        if r.write and r.code < 300 and r.resource in ("rollouts", "gatewayroutes") and r.namespace == NAMESPACE:
            writes[rollout_of(r)].append(r)
    assert len(writes) == N, "every rollout was written"
    for key, ws in writes.items():
        writers = [w.user for w in sorted(ws, key=lambda w: w.received)]
        shard = shard_of(key, SHARDS)
        if key not in orphans:
            assert set(writers) == {owner[shard]}, f"{key} (shard {shard}) written by {set(writers)}"
            continue
        changes = [i for i in range(1, len(writers)) if writers[i] != writers[i - 1]]
        assert len(changes) == 1 and writers[0] == victim, f"{key}: writers in order {writers}"
        last_victim = max(w.received for w in ws if w.user == victim)
        first_new = min(w.received for w in ws if w.user != victim)
        assert last_victim <= killed + SLACK, f"{key}: the killed replica wrote after it was killed"
        assert first_new >= killed + (LEASE - RETRY) - SLACK, f"{key}: taken over before the lease could expire"
        assert {w.user for w in ws if w.user != victim} == {new_owner}

    # --- the daemons' own logs: who decided for each rollout, when -------------------------------
    decided = {name: decisions(d) for name, d in replicas.items()}
    for i in range(N):
        key = f"{NAMESPACE}/r{i}"
        spans = sorted((min(ts), max(ts), name) for name in REPLICAS if (ts := decided[name].get(key)))
        assert spans, f"{key} was never judged"
        for (_, end, a), (start, _, b) in itertools.pairwise(spans):
            assert end <= start + SLACK, f"{key} judged by {a} until {end} and by {b} from {start}"

    delays = sorted(first_after[k] - killed for k in orphans)
    record(
        "shard_takeover",
        {
            "rollouts": N,
            "shards": SHARDS,
            "lease_renew_retry_seconds": [LEASE, RENEW, RETRY],
            "sigkill_to_lease_taken_seconds": round(lease_taken - killed, 2),
            "sigkill_to_rollout_written_seconds_p50": round(statistics.median(delays), 2),
            "sigkill_to_rollout_written_seconds_max": round(delays[-1], 2),
            "rollouts_taken_over": len(orphans),
        },
    )
    assert delays[-1] < 15.0, f"the last rollout of the killed replica's shard was written {delays[-1]:.1f}s after"
