"""Table-driven tests of every engine transition (threshold judge, so the numbers are exact)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rollout.core.actions import Notify, RequestApproval, ScheduleNext, WeightPurpose
from rollout.core.engine import decide
from rollout.core.states import (
    CANARY_ONLY,
    STABLE_ONLY,
    CommandKind,
    Observations,
    Outcome,
    Phase,
    RolloutState,
    VerdictKind,
    Weights,
)
from tests.core.factories import T0, Driver, command, failing, healthy, missing, policy, weight_actions


def phase_of(d: Driver) -> Phase:
    """The driver's phase, read afresh (so that mypy does not carry an earlier narrowing over)."""
    return d.state.phase


def test_pending_starts_and_sets_the_first_weight() -> None:
    d = Driver(policy())
    decision = d.tick()
    assert decision.state.phase is Phase.PROGRESSING
    [move] = weight_actions(decision.actions)
    assert (move.target, move.expected, move.purpose) == (Weights(10, 90), STABLE_ONLY, WeightPurpose.STEP)
    assert decision.state.prior_weights == STABLE_ONLY
    assert any(isinstance(a, Notify) and a.event == "rollout.started" for a in decision.actions)
    assert any(isinstance(a, ScheduleNext) and a.at == T0 + timedelta(seconds=30) for a in decision.actions)


def test_waits_when_the_concurrency_cap_is_reached() -> None:
    decision = decide(policy(), RolloutState(), Observations(weights=STABLE_ONLY, may_start=False), T0)
    assert decision.state.phase is Phase.PENDING
    assert "cap" in decision.state.message
    assert not weight_actions(decision.actions)


def test_waits_when_the_route_cannot_be_read() -> None:
    decision = decide(policy(), RolloutState(), Observations(weights=None, weights_error="forbidden"), T0)
    assert decision.state.phase is Phase.PENDING
    assert "forbidden" in decision.state.message


def test_healthy_run_promotes_through_every_step() -> None:
    d = Driver(policy())
    d.tick()
    weights = []
    for _ in range(20):
        decision = d.tick(healthy())
        weights += [a.target.canary for a in weight_actions(decision.actions)]
        if decision.state.phase is Phase.PROMOTED:
            break
    assert d.state.phase is Phase.PROMOTED
    assert weights == [50, 100]
    assert d.live == CANARY_ONLY
    assert d.state.verdict is not None and d.state.verdict.kind is VerdictKind.PASS


def test_failures_up_to_the_limit_roll_back_and_name_the_slo() -> None:
    d = Driver(policy())
    d.tick()
    first = d.tick(failing())
    assert first.state.phase is Phase.PROGRESSING and first.state.failures == 1
    second = d.tick(failing())
    assert second.state.phase is Phase.ROLLING_BACK
    [move] = weight_actions(second.actions)
    assert move.target == STABLE_ONLY and move.purpose is WeightPurpose.ROLLBACK and move.expected is None
    assert "error rate 20%" in second.state.end_reason and "max 1%" in second.state.end_reason
    done = d.tick(failing())
    assert done.state.phase is Phase.ROLLED_BACK
    assert d.live == STABLE_ONLY
    assert not weight_actions(done.actions)


@pytest.mark.parametrize(
    ("no_data", "expected_phase", "failures"),
    [("hold", Phase.PROGRESSING, 0), ("fail", Phase.ROLLED_BACK, 2), ("pass", Phase.PROGRESSING, 0)],
)
def test_no_data_policy(no_data: str, expected_phase: Phase, failures: int) -> None:
    d = Driver(policy(noData=no_data))
    d.tick()
    for _ in range(4):
        d.tick(missing())
    assert d.state.phase is expected_phase
    assert d.state.failures == failures
    assert d.state.weights.canary in (0, 10, 50)  # never promoted on missing data


def test_thin_data_holds_with_the_numbers() -> None:
    d = Driver(policy())
    d.tick()
    decision = d.tick(healthy(requests=20))
    assert decision.state.verdict is not None
    assert decision.state.verdict.kind is VerdictKind.HOLD
    assert "only 20 canary requests, minRequests is 100" in decision.state.verdict.summary
    assert decision.state.weights.canary == 10


def test_progress_deadline_pauses_and_says_why() -> None:
    d = Driver(
        policy(),
    )
    d.tick()
    for _ in range(61):
        d.tick(missing(Outcome.ZERO_TRAFFIC))
    assert d.state.phase is Phase.PAUSED
    assert d.state.pause_reason.startswith("progress deadline")
    assert "zero-traffic" in d.state.message


def test_unavailable_metrics_hold_then_roll_back_when_the_policy_says_so() -> None:
    d = Driver(policy(unavailable={"action": "rollback", "after": "2m"}))
    d.tick()
    for _ in range(4):
        d.tick(missing(Outcome.UNAVAILABLE))
    assert d.state.phase is Phase.PROGRESSING and d.state.unavailable_since == T0 + timedelta(seconds=30)
    d.tick(missing(Outcome.UNAVAILABLE))
    assert phase_of(d) is Phase.ROLLING_BACK
    assert "metrics unavailable for 2m" in d.state.end_reason


def test_unavailable_metrics_hold_by_default() -> None:
    d = Driver(policy())
    d.tick()
    for _ in range(40):
        d.tick(missing(Outcome.UNAVAILABLE))
    assert d.state.phase is Phase.PROGRESSING
    assert d.state.failures == 0


def test_pause_step_with_duration_resumes_on_its_own() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"pause": {"duration": "2m"}}, {"setWeight": 100}]))
    d.tick()
    d.tick(healthy())
    assert d.state.phase is Phase.PAUSED and d.state.step == 1
    for _ in range(3):
        d.tick(healthy())
    assert d.state.phase is Phase.PAUSED
    d.tick(healthy())
    assert d.state.step == 2


def test_indefinite_pause_needs_resume() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]))
    d.tick()
    for _ in range(10):
        d.tick(healthy())
    assert d.state.phase is Phase.PAUSED and d.state.step == 1
    decision = d.tick(healthy(), [command(CommandKind.RESUME, d.now)])
    assert decision.state.step == 2
    assert [a.target.canary for a in weight_actions(decision.actions)] == [100]


def test_approval_gate_requests_once_and_advances_when_approved() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"approval": {}}, {"setWeight": 100}]))
    d.tick()
    first = d.tick(healthy())
    assert first.state.phase is Phase.AWAITING_APPROVAL
    assert sum(isinstance(a, RequestApproval) for a in first.actions) == 1
    again = d.tick(healthy())
    assert not any(isinstance(a, RequestApproval) for a in again.actions)
    approved = d.tick(healthy(), [command(CommandKind.APPROVE, d.now, by="bob")])
    assert approved.state.step == 2
    assert [a.target.canary for a in weight_actions(approved.actions)] == [100]


@pytest.mark.parametrize(("on_timeout", "phase"), [("rollback", Phase.ROLLING_BACK), ("pause", Phase.PAUSED)])
def test_approval_timeout(on_timeout: str, phase: Phase) -> None:
    p = policy(
        steps=[{"setWeight": 10}, {"approval": {}}, {"setWeight": 100}],
        approvals={"timeout": "5m", "onTimeout": on_timeout},
    )
    d = Driver(p)
    d.tick()
    for _ in range(12):
        d.tick(healthy())
    assert d.state.phase is phase


def test_abort_rolls_back_to_aborted_and_records_who() -> None:
    d = Driver(policy())
    d.tick()
    d.tick(healthy())
    decision = d.tick(healthy(), [command(CommandKind.ABORT, d.now, by="carol")])
    assert decision.state.phase is Phase.ROLLING_BACK
    d.tick(healthy())
    assert d.state.phase is Phase.ABORTED and d.state.aborted_by == "carol"
    assert d.live == STABLE_ONLY


def test_promote_full_skips_gates_and_retry_restarts_a_rolled_back_run() -> None:
    d = Driver(policy())
    d.tick()
    d.tick(missing(), [command(CommandKind.PROMOTE_FULL, d.now)])
    d.tick(missing())
    assert d.state.phase is Phase.PROMOTED and "gates skipped" in d.state.end_reason
    d2 = Driver(policy())
    d2.tick()
    d2.tick(failing())
    d2.tick(failing())
    d2.tick(failing())
    assert d2.state.phase is Phase.ROLLED_BACK
    d2.tick(healthy())
    assert d2.state.phase is Phase.ROLLED_BACK  # not retried by itself
    decision = d2.tick(healthy(), [command(CommandKind.RETRY, d2.now)])
    assert decision.state.phase is Phase.PROGRESSING and decision.state.failures == 0


def test_commands_are_idempotent_by_id() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"setWeight": 20}, {"setWeight": 30}, {"setWeight": 100}]))
    d.tick()
    promote = command(CommandKind.PROMOTE, d.now)
    d.tick(missing(), [promote])
    step = d.state.step
    d.tick(missing(), [promote])
    assert d.state.step == step


def test_drift_pauses_without_writing_then_resume_restores() -> None:
    d = Driver(policy())
    d.tick()
    d.live = Weights(40, 60)  # someone edits the route
    decision = d.tick(healthy())
    assert decision.state.phase is Phase.PAUSED and decision.state.pause_reason.startswith("drift")
    assert not weight_actions(decision.actions)
    assert any(isinstance(a, Notify) and a.event == "rollout.drift" for a in decision.actions)
    quiet = d.tick(healthy())
    assert not any(isinstance(a, Notify) for a in quiet.actions)  # told once
    resumed = d.tick(healthy(), [command(CommandKind.RESUME, d.now)])
    [move] = weight_actions(resumed.actions)
    assert move.target == Weights(10, 90) and move.expected == Weights(40, 60)


def test_a_write_of_ours_that_did_not_land_is_reapplied_not_called_drift() -> None:
    d = Driver(policy())
    d.tick(apply=False)  # crashed after persisting state, before writing the route
    decision = d.tick(healthy())
    [move] = weight_actions(decision.actions)
    assert move.purpose is WeightPurpose.REAPPLY and move.target == Weights(10, 90)
    assert decision.state.phase is Phase.PROGRESSING


def test_spec_change_mid_run_starts_the_new_revision() -> None:
    d = Driver(policy())
    d.tick()
    d.tick(healthy())
    d.policy = policy(steps=[{"setWeight": 20}, {"setWeight": 100}])
    decision = d.tick(healthy())
    assert decision.state.revision == d.policy.revision
    assert any(isinstance(a, Notify) and a.event == "rollout.superseded" for a in decision.actions)
    assert [a.target.canary for a in weight_actions(decision.actions)] == [20]


def test_promoted_run_stays_put_until_the_spec_changes() -> None:
    d = Driver(policy(steps=[{"setWeight": 100}]))
    for _ in range(6):
        d.tick(healthy())
    assert d.state.phase is Phase.PROMOTED
    decision = d.tick(healthy())
    assert not decision.actions


def test_promotion_needs_a_passing_judgement_with_enough_data() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"approval": {}}], noData="pass"))
    d.tick()
    d.tick(missing())  # passes the weight step on "noData: pass"
    d.tick(missing(), [command(CommandKind.APPROVE, d.now)])
    for _ in range(5):
        d.tick(missing())
    assert d.state.phase is Phase.PROGRESSING and "holding until a judgement passes" in d.state.message
    d.tick(healthy())
    d.tick(healthy())
    assert phase_of(d) is Phase.PROMOTED


def test_custom_metric_bounds() -> None:
    p = policy(metrics=[{"name": "saturation", "query": 'max(x{{ns="{namespace}"}})', "max": 0.8}])
    sample = healthy()
    d = Driver(p)
    d.tick()
    over = type(sample)(outcome=Outcome.OK, canary=sample.canary, stable=sample.stable, custom={"saturation": 0.95})
    decision = d.tick(over)
    assert decision.state.verdict is not None and decision.state.verdict.kind is VerdictKind.FAIL
    assert "saturation = 0.95" in decision.state.verdict.summary


def test_state_round_trips_through_its_status_form() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"approval": {}}, {"setWeight": 100}]))
    d.tick()
    d.tick(failing())
    d.tick(healthy(), [command(CommandKind.PAUSE, d.now)])
    assert RolloutState.from_dict(d.state.to_dict()) == d.state


def test_a_slack_answer_to_an_old_approval_request_is_ignored() -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"approval": {}},
        {"setWeight": 50},
        {"approval": {}},
        {"setWeight": 100},
    ]
    d = Driver(policy(steps=steps))
    d.tick()
    first = d.tick(healthy())
    [request] = [a for a in first.actions if isinstance(a, RequestApproval)]
    approve = command(CommandKind.APPROVE, d.now)
    answer = type(approve)(kind=approve.kind, by="slack:U1", at=d.now, id="slack-1", ref=request.key)
    d.tick(healthy(), [answer])
    assert d.state.step == 2
    for _ in range(4):
        d.tick(healthy())
    assert d.state.phase is Phase.AWAITING_APPROVAL and d.state.step == 3
    stale = type(approve)(kind=approve.kind, by="slack:U1", at=d.now, id="slack-2", ref=request.key)
    reject = type(approve)(kind=CommandKind.ABORT, by="slack:U1", at=d.now, id="slack-3", ref=request.key)
    decision = d.tick(healthy(), [stale, reject])
    assert decision.state.phase is Phase.AWAITING_APPROVAL and decision.state.step == 3
    assert "no longer pending" in decision.reason


def test_a_new_revision_with_other_backends_first_sends_the_old_traffic_home() -> None:
    d = Driver(policy())
    d.tick()
    d.tick(healthy())
    assert (d.state.stable_backend, d.state.canary_backend) == ("v1", "v2")
    nxt = policy()
    spec = nxt.spec.model_copy(update={"stable": "v2", "canary": "v3"})
    d.policy = nxt.model_copy(update={"spec": spec})
    rolling = d.tick(healthy())
    assert rolling.state.phase is Phase.ROLLING_BACK and "superseded" in rolling.state.end_reason
    assert [a.target for a in weight_actions(rolling.actions)] == [STABLE_ONLY]
    assert rolling.state.revision != d.policy.revision  # still the old run, on the old backends
    d.tick(healthy())
    assert d.state.phase is Phase.ROLLED_BACK
    fresh = d.tick(healthy())
    assert fresh.state.revision == d.policy.revision
    assert (fresh.state.stable_backend, fresh.state.canary_backend) == ("v2", "v3")
    assert [a.target.canary for a in weight_actions(fresh.actions)] == [10]
