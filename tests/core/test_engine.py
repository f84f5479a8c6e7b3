"""Table-driven tests of the engine's transitions, with exact counters and a clock that follows
ScheduleNext (the threshold judge, so the numbers are exact)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval, ScheduleNext, WeightPurpose
from rollout.core.engine import decide
from rollout.core.readings import Outcome
from rollout.core.states import (
    CANARY_ONLY,
    STABLE_ONLY,
    CommandKind,
    Observations,
    PauseReason,
    Phase,
    ProblemKind,
    RolloutState,
    RouteProblem,
    Weights,
)
from rollout.core.verdicts import VerdictKind
from tests.core.factories import T0, Driver, Traffic, command, policy, weight_actions


def phase_of(d: Driver) -> Phase:
    return d.state.phase  # read afresh, so mypy does not carry an earlier narrowing over


def test_start_writes_the_first_weight_and_status_reports_only_what_the_route_carries() -> None:
    d = Driver(policy())
    decision = d.tick()
    assert decision.state.phase is Phase.PROGRESSING
    [move] = weight_actions(decision.actions)
    assert (move.target, move.expected, move.purpose) == (Weights(10, 90), STABLE_ONLY, WeightPurpose.STEP)
    assert decision.state.desired == Weights(10, 90)
    assert decision.state.observed == STABLE_ONLY  # not yet seen on the route
    assert decision.state.pending is not None
    assert any(isinstance(a, Notify) and a.event == "rollout.started" for a in decision.actions)
    assert [a.at for a in decision.actions if isinstance(a, ScheduleNext)] == [T0]  # confirm the write at once
    confirm = d.tick()
    assert confirm.state.observed == Weights(10, 90) and confirm.state.pending is None
    assert confirm.state.weight_since == T0 + timedelta(seconds=1)


def test_healthy_run_visits_every_weight_and_promotes() -> None:
    d = Driver(policy())
    d.until(lambda d: d.state.phase is Phase.PROMOTED)
    assert d.visited == [0, 10, 50, 100]
    assert d.live == CANARY_ONLY
    assert d.state.verdict is not None and d.state.verdict.kind is VerdictKind.PASS


def test_a_step_never_passes_on_evidence_from_an_earlier_weight() -> None:
    """Issue: a setWeight 50 step lasted 66 ms on evidence gathered at 10%."""
    d = Driver(policy(stepDuration="2m"))
    d.until(lambda d: d.state.step == 1 and d.state.observed == Weights(50, 50))
    since = d.state.weight_since
    assert since is not None
    d.until(lambda d: d.state.step == 2)
    step_end = d.decisions[-1]
    ended = step_end.state.step_started_at
    assert ended is not None and ended - since >= timedelta(minutes=2)  # the full stepDuration at 50%
    verdict = step_end.state.verdict
    assert verdict is not None and verdict.canary is not None
    assert verdict.canary.requests >= 100  # minRequests counted at 50% only


def test_fault_only_at_fifty_percent_rolls_back_at_that_step() -> None:
    traffic = Traffic(canary_errors_at_or_above={50: 0.3})
    d = Driver(policy(), traffic=traffic)
    d.until(lambda d: d.state.phase.final)
    assert d.state.phase is Phase.ROLLED_BACK
    assert d.visited == [0, 10, 50, 0]
    assert d.state.step == 1 and "errorRate" in d.state.end_reason


def test_failures_up_to_the_limit_roll_back() -> None:
    d = Driver(policy(), traffic=Traffic(canary_errors=0.2))
    d.until(lambda d: d.state.phase is Phase.ROLLING_BACK)
    assert d.state.judge.failures == 2
    rollback = d.decisions[-1]
    [move] = weight_actions(rollback.actions)
    assert move.target == STABLE_ONLY and move.expected is None and move.purpose is WeightPurpose.ROLLBACK
    d.until(lambda d: d.state.phase is Phase.ROLLED_BACK)
    assert d.live == STABLE_ONLY and d.state.observed == STABLE_ONLY


@pytest.mark.parametrize(("no_data", "ends_at"), [("hold", Phase.PAUSED), ("fail", Phase.ROLLED_BACK), ("pass", None)])
def test_no_data_policy_never_promotes(no_data: str, ends_at: Phase | None) -> None:
    d = Driver(policy(noData=no_data, deadline="10m"), metrics=Outcome.NO_DATA)
    for _ in range(80):
        d.tick()
    assert d.state.phase is not Phase.PROMOTED and d.live.canary < 100
    if ends_at is not None:
        assert d.state.phase is ends_at
    else:  # pass: steps end, promotion waits for data
        assert d.state.step == 2 and "holding before promotion" in d.state.message


def test_ten_second_pause_with_a_thirty_second_interval_ends_on_time() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"pause": {"duration": "10s"}}, {"setWeight": 100}]))
    d.until(lambda d: d.state.step == 1)
    started = d.state.step_started_at
    assert started is not None
    d.until(lambda d: d.state.step == 2)
    assert d.decisions[-1].state.step_started_at == started + timedelta(seconds=10)


def test_indefinite_pause_needs_resume() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]))
    d.until(lambda d: d.state.phase is Phase.PAUSED)
    assert d.state.pause_reason is PauseReason.STEP and d.state.step == 1
    for _ in range(5):
        d.tick()
    assert d.state.step == 1
    decision = d.tick([command(CommandKind.RESUME, d.now)])
    assert decision.state.step == 2
    assert [a.target.canary for a in weight_actions(decision.actions)] == [100]


def test_approval_gate_asks_once_with_a_one_based_step_and_times_out_on_time() -> None:
    p = policy(
        steps=[{"setWeight": 10}, {"approval": {}}, {"setWeight": 100}],
        approvals={"timeout": "5m", "onTimeout": "rollback"},
    )
    d = Driver(p)
    d.until(lambda d: d.state.phase is Phase.AWAITING_APPROVAL)
    requests = [a for dec in d.decisions for a in dec.actions if isinstance(a, RequestApproval)]
    assert [r.number for r in requests] == [2]
    asked = d.state.approval_requested_at
    assert asked is not None
    d.until(lambda d: d.state.phase is Phase.ROLLING_BACK)
    assert d.times[-1] == asked + timedelta(minutes=5)  # the timer fired on time, not an interval late
    assert sum(isinstance(a, RequestApproval) for dec in d.decisions for a in dec.actions) == 1


def test_approval_advances_and_is_recorded() -> None:
    d = Driver(policy(steps=[{"setWeight": 10}, {"approval": {}}, {"setWeight": 100}]))
    d.until(lambda d: d.state.phase is Phase.AWAITING_APPROVAL)
    decision = d.tick([command(CommandKind.APPROVE, d.now, by="bob")])
    assert decision.state.step == 2 and decision.state.approvals == ("step 2: bob",)
    assert [r.accepted for r in decision.commands] == [True]


def test_abort_wins_over_everything_given_with_it_and_ends_at_stable() -> None:
    d = Driver(policy())
    d.until(lambda d: d.state.observed == Weights(10, 90))
    naive = (d.now - timedelta(minutes=1)).replace(tzinfo=None)
    batch = [
        command(CommandKind.PROMOTE_FULL, d.now - timedelta(minutes=5), n=1),
        command(CommandKind.ABORT, naive, n=2, by="carol"),
        command(CommandKind.RESUME, d.now, n=3),
    ]
    decision = d.tick(batch)
    assert decision.state.phase is Phase.ROLLING_BACK and decision.state.aborted_by == "carol"
    assert [r.accepted for r in decision.commands] == [True, False, False]
    d.until(lambda d: d.state.phase.final)
    assert d.state.phase is Phase.ABORTED and d.live == STABLE_ONLY


def test_promote_full_and_retry() -> None:
    d = Driver(policy())
    d.tick()
    d.tick([command(CommandKind.PROMOTE_FULL, d.now)])
    d.until(lambda d: d.state.phase.final)
    assert d.state.phase is Phase.PROMOTED and "gates skipped" in d.state.end_reason
    d2 = Driver(policy(), traffic=Traffic(canary_errors=0.5))
    d2.until(lambda d: d.state.phase is Phase.ROLLED_BACK)
    retried = d2.tick([command(CommandKind.RETRY, d2.now)])
    assert retried.state.phase is Phase.PROGRESSING and retried.state.revision == d2.policy.revision


@pytest.mark.parametrize("edit", [STABLE_ONLY, Weights(5, 95), Weights(70, 30), CANARY_ONLY])
def test_a_hand_edit_in_any_direction_pauses_and_is_never_overwritten(edit: Weights) -> None:
    d = Driver(policy())
    d.until(lambda d: d.state.step == 1 and d.state.observed == Weights(50, 50))
    d.edit(edit)
    for _ in range(10):
        decision = d.tick()
        assert not weight_actions(decision.actions)
    assert d.state.phase is Phase.PAUSED and d.state.pause_reason is PauseReason.DRIFT
    assert d.live == edit and d.state.observed == edit
    resumed = d.tick([command(CommandKind.RESUME, d.now)])
    assert [a.target for a in weight_actions(resumed.actions)] == [Weights(50, 50)]
    d.tick()
    assert d.live == Weights(50, 50) and phase_of(d) is Phase.PROGRESSING


def test_a_hand_edit_back_to_the_previous_step_is_drift_not_a_lost_write() -> None:
    d = Driver(policy())
    d.until(lambda d: d.state.step == 1 and d.state.observed == Weights(50, 50))
    d.edit(Weights(10, 90))  # exactly the weights before our (confirmed) write
    d.tick()
    assert d.state.phase is Phase.PAUSED and d.state.pause_reason is PauseReason.DRIFT
    assert d.live == Weights(10, 90)


def test_abort_after_drift_goes_to_stable() -> None:
    d = Driver(policy())
    d.until(lambda d: d.state.observed == Weights(10, 90))
    d.edit(Weights(60, 40))
    d.tick()
    d.tick([command(CommandKind.ABORT, d.now)])
    d.until(lambda d: d.state.phase.final)
    assert d.state.phase is Phase.ABORTED and d.live == STABLE_ONLY


def test_weights_put_back_right_after_our_write_landed_are_drift_not_a_lost_write() -> None:
    d = Driver(policy())
    d.tick()  # writes 10%, stored
    d.edit(STABLE_ONLY)  # a person takes the canary out before the next tick
    decision = d.tick()
    assert not weight_actions(decision.actions)
    assert d.state.phase is Phase.PAUSED and d.state.pause_reason is PauseReason.DRIFT
    assert d.live == STABLE_ONLY


def test_a_write_that_did_not_land_is_written_again_while_it_is_pending() -> None:
    d = Driver(policy(), report_landed=False)
    first = d.tick()
    assert weight_actions(first.actions)
    d.live = STABLE_ONLY  # the process died between persisting and writing
    again = d.tick()
    [move] = weight_actions(again.actions)
    assert move.purpose is WeightPurpose.REAPPLY and move.target == Weights(10, 90)
    d.tick()
    assert d.state.observed == Weights(10, 90) and d.state.phase is Phase.PROGRESSING


def test_a_permanent_write_failure_pauses_once_and_the_status_keeps_the_true_weights() -> None:
    schema = RouteProblem(ProblemKind.SCHEMA, "the API server pruned weightedTargets")
    d = Driver(policy(), write_problem=schema)
    for _ in range(20):
        d.tick()
    assert d.state.phase is Phase.PAUSED and d.state.pause_reason is PauseReason.ROUTE_ERROR
    assert d.state.observed == STABLE_ONLY and d.live == STABLE_ONLY
    assert d.state.route_problem == schema
    writes = sum(len(weight_actions(dec.actions)) for dec in d.decisions)
    assert writes == 1  # never retried as if transient
    notes = [
        a for dec in d.decisions for a in dec.actions if isinstance(a, Notify) and a.event == "rollout.route-error"
    ]
    assert len(notes) == 1


def test_a_transient_write_failure_is_retried_then_pauses_after_a_bound() -> None:
    conflict = RouteProblem(ProblemKind.CONFLICT, "lost a race")
    d = Driver(policy(), write_problem=conflict)
    for _ in range(20):
        d.tick()
    writes = sum(len(weight_actions(dec.actions)) for dec in d.decisions)
    assert writes == 5
    assert d.state.phase is Phase.PAUSED and d.state.pause_reason is PauseReason.ROUTE_ERROR


def test_progress_deadline_fires_even_when_the_route_cannot_be_read() -> None:
    d = Driver(policy(deadline="5m"))
    d.until(lambda d: d.state.observed == Weights(10, 90))
    d.route_problem = RouteProblem(ProblemKind.UNAVAILABLE, "connection refused")
    d.until(lambda d: d.state.phase is Phase.PAUSED, limit=50)
    assert d.state.pause_reason is PauseReason.DEADLINE


def test_unavailable_metrics_hold_then_roll_back_when_the_policy_says_so() -> None:
    d = Driver(policy(unavailable={"action": "rollback", "after": "2m"}))
    d.until(lambda d: d.state.observed == Weights(10, 90))
    d.metrics = Outcome.UNAVAILABLE
    d.tick()
    since = d.state.unavailable_since
    assert since is not None and d.state.phase is Phase.PROGRESSING
    d.until(lambda d: d.state.phase is Phase.ROLLING_BACK, limit=20)
    assert d.decisions[-1].state.end_reason.startswith("metrics unavailable for 2m")


def test_the_same_reading_is_never_judged_twice() -> None:
    d = Driver(policy())
    d.until(lambda d: d.state.verdict is not None and d.state.judge.canary.requests > 0)
    reading = d.reading()
    obs = Observations(route=d.live, reading=reading)
    once = decide(d.policy, d.state, obs, d.now)
    twice = decide(d.policy, once.state, obs, d.now + timedelta(seconds=5))
    assert twice.state.judge == once.state.judge
    assert twice.state.baseline == once.state.baseline


def test_a_spec_naming_other_backends_first_restores_the_old_stable() -> None:
    d = Driver(policy())
    d.until(lambda d: d.state.observed == Weights(10, 90))
    other = policy().model_copy(update={"spec": policy().spec.model_copy(update={"stable": "v2", "canary": "v3"})})
    d.policy = other
    decision = d.tick()
    assert decision.state.phase is Phase.ROLLING_BACK and "other backends" in decision.state.end_reason
    d.until(lambda d: d.state.revision == other.revision and d.state.phase is Phase.PROGRESSING)
    assert d.visited[:4] == [0, 10, 0, 10]


def test_waits_when_the_concurrency_cap_is_reached_or_the_route_is_unreadable() -> None:
    capped = decide(policy(), RolloutState(), Observations(route=STABLE_ONLY, may_start=False), T0)
    assert capped.state.phase is Phase.PENDING and "cap" in capped.state.message
    problem = RouteProblem(ProblemKind.FORBIDDEN, "forbidden")
    blind = decide(policy(), RolloutState(), Observations(route_problem=problem), T0)
    assert blind.state.phase is Phase.PENDING and "forbidden" in blind.state.message


@pytest.mark.parametrize(
    ("answer", "resolution", "by"),
    [
        (CommandKind.APPROVE, "approved", "bob"),
        (CommandKind.ABORT, "rejected", "bob"),
        (CommandKind.PROMOTE, "closed", ""),
        (None, "timed-out", ""),
    ],
)
def test_every_way_an_approval_ends_is_announced_once(answer: CommandKind | None, resolution: str, by: str) -> None:
    p = policy(steps=[{"setWeight": 10}, {"approval": {}}, {"setWeight": 100}], approvals={"timeout": "5m"})
    d = Driver(p)
    d.until(lambda d: d.state.phase is Phase.AWAITING_APPROVAL)
    if answer is not None:
        d.tick([command(answer, d.now, by="bob")])
    else:
        d.until(lambda d: d.state.phase is Phase.PAUSED)
    for _ in range(3):
        d.tick()
    ended = [a for dec in d.decisions for a in dec.actions if isinstance(a, ApprovalResolved)]
    assert [(e.resolution.value, e.by, e.number) for e in ended] == [(resolution, by, 2)]
