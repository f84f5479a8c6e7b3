"""The persisted state: one declaration round-trips, stays compact and finite, and a status written
by rollout 0.1 is still read."""

from __future__ import annotations

import json
from datetime import timedelta

from rollout.core import persisting
from rollout.core.readings import Outcome, Reading, TargetCounters
from rollout.core.states import PauseReason, PendingWrite, Phase, RolloutState, Weights
from rollout.core.verdicts import Check, Verdict, VerdictKind
from tests.core.factories import T0, Driver, policy

# A status.state exactly as rollout 0.1 wrote it (copied from a live cluster's Rollout).
LEGACY = {
    "phase": "Paused",
    "revision": "3f9a1c2b7d4e",
    "stableBackend": "recommendation-service-v1",
    "canaryBackend": "recommendation-service-v2",
    "step": 1,
    "canaryWeight": 50,
    "stableWeight": 50,
    "priorCanaryWeight": 20,
    "runStartedAt": "2026-11-20T10:00:00+00:00",
    "stepStartedAt": "2026-11-20T10:02:00+00:00",
    "lastJudgedAt": "2026-11-20T10:02:30+00:00",
    "unavailableSince": None,
    "failures": 1,
    "verdict": {
        "kind": "hold",
        "checks": [{"name": "errorRate", "verdict": "hold", "value": 1.2, "limit": 1.0, "detail": "x"}],
        "enough_data": False,
        "summary": "hold: not enough evidence yet",
        "canary": {"requests": 300.0, "errors": 3.0, "slow": 0.0},
        "stable": {"requests": 1200.0, "errors": 4.0, "slow": 0.0},
        "conclusive": False,
    },
    "memory": {"intervals": 3, "canary": {}, "stable": {}, "accumulators": {"errorRate.relN": 300.0}},
    "message": "paused: someone changed the weights",
    "pauseReason": "drift: route carries canary=0 stable=100, rollout set canary=50 stable=50",
    "approvedBy": "",
    "approvalRequestedAt": None,
    "approvals": ["step 1: alice"],
    "endReason": "",
    "abortedBy": "",
    "handledCommands": ["cli-1"],
    "notified": ["started", "step-0"],
    "updatedAt": "2026-11-20T10:02:30+00:00",
}


def test_a_state_round_trips_with_camel_case_keys_and_compact_internals() -> None:
    d = Driver(policy())
    d.until(lambda d: d.state.verdict is not None and d.state.baseline is not None)
    stored = json.loads(json.dumps(persisting.dump(d.state)))
    assert persisting.load(stored) == d.state
    assert "weightSince" in stored and "weight_since" not in stored
    assert isinstance(stored["judge"], str) and isinstance(stored["baseline"], str)
    assert "\n" not in stored["judge"]


def test_non_finite_floats_never_reach_the_api_server() -> None:
    verdict = Verdict(
        VerdictKind.FAIL, (Check("errorRate", VerdictKind.FAIL, float("inf"), 1.0, ratio=float("nan")),), True, "x"
    )
    stored = persisting.dump(RolloutState(verdict=verdict))
    assert stored["verdict"]["checks"][0]["value"] is None and stored["verdict"]["checks"][0]["ratio"] is None
    json.dumps(stored, allow_nan=False)


def test_every_field_is_declared_in_the_schema() -> None:
    props = persisting.schema()["properties"]
    stored = persisting.dump(
        RolloutState(
            pending=PendingWrite(Weights(10, 90), Weights(0, 100), T0),
            baseline=Reading(Outcome.OK, T0, {"t": TargetCounters(1, 0, 2.0)}),
        )
    )
    assert set(stored) == set(props)


def test_a_status_written_by_rollout_0_1_is_read() -> None:
    state = persisting.load(LEGACY)
    assert state.phase is Phase.PAUSED and state.pause_reason is PauseReason.DRIFT
    assert state.desired == Weights(50, 50) and state.observed is None  # re-read on the next tick
    assert state.pending == PendingWrite(Weights(50, 50), Weights(20, 80), state.step_started_at or T0)
    assert state.step == 1 and state.handled_commands == ("cli-1",) and state.approvals == ("step 1: alice",)
    assert state.verdict is not None and state.verdict.kind is VerdictKind.HOLD
    assert state.weight_since == state.step_started_at
    assert state.step_started_at is not None and state.run_started_at == state.step_started_at - timedelta(minutes=2)
