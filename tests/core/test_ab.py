"""A/B (match) steps in the engine: the managed route is put in place and confirmed before anything
is judged, judged on the requests that match (share unknown), removed before any weight moves and
before a run ends, repaired after a crash, and guarded against other writers like the weights."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from rollout.core import persisting
from rollout.core.actions import Notify, WeightPurpose
from rollout.core.conditions import conditions
from rollout.core.engine import decide, hold
from rollout.core.judging import JudgeMemory, judge
from rollout.core.judging.base import JudgeInput
from rollout.core.matches import MatchKind, MatchRule, RouteMatch
from rollout.core.states import (
    CANARY_ONLY,
    STABLE_ONLY,
    CommandKind,
    Observations,
    PauseReason,
    Phase,
    ProblemKind,
    RouteProblem,
    Weights,
)
from rollout.core.verdicts import Verdict
from rollout.policy.models import Analysis
from tests.core.factories import BETA, BETA_MATCH, Driver, Traffic, command, match_actions, policy, weight_actions

AB_STEPS: list[dict[str, Any]] = [{"match": BETA}, {"pause": {"duration": "5m"}}, {"setWeight": 100}]


def managed(d: Driver) -> RouteMatch | None:
    return d.match  # read afresh, so mypy does not carry an earlier narrowing over


def phase_of(d: Driver) -> Phase:
    return d.state.phase


def ab(**extra: Any) -> Driver:
    return Driver(policy(steps=AB_STEPS, **extra), traffic=Traffic(rps=200, matching=0.2))


def test_the_managed_route_goes_in_first_and_is_confirmed_before_anything_is_judged() -> None:
    d = ab()
    first = d.tick()
    [put] = match_actions(first.actions)
    assert (put.target, put.expected, put.check, put.purpose) == (BETA_MATCH, None, True, WeightPurpose.STEP)
    assert not weight_actions(first.actions)
    assert first.state.match == BETA_MATCH and first.state.match_observed is None  # not seen yet
    assert first.state.match_pending is not None and first.state.weight_since is None
    seen = d.tick()
    assert seen.state.match_observed == BETA_MATCH and seen.state.match_pending is None
    assert seen.state.weight_since == d.times[-1]  # at-weight data starts once the route is seen
    assert d.live == STABLE_ONLY  # only the requests that match go to the canary


def test_a_healthy_beta_is_judged_on_the_matching_requests_and_promoted() -> None:
    d = ab(stepDuration="2m")
    d.until(lambda d: d.state.step == 1)
    passed = d.decisions[-1].state.verdict
    assert passed is not None and passed.canary is not None and passed.canary.requests >= 100
    since = next(dec.state.weight_since for dec in d.decisions if dec.state.weight_since is not None)
    assert d.times[-1] - since >= timedelta(minutes=2)  # never before stepDuration with the route in place
    d.until(lambda d: d.state.phase is Phase.PROMOTED)
    assert d.matches == [None, BETA_MATCH, None]
    assert d.visited == [0, 100]
    assert d.state.match is None and d.state.match_observed is None and d.live == CANARY_ONLY


def test_the_next_set_weight_step_removes_the_managed_route_before_moving_weights() -> None:
    d = ab()
    d.until(lambda d: d.live == CANARY_ONLY)
    removal = next(dec for dec in d.decisions if dec.match_changes and dec.match_changes[0].target is None)
    assert not removal.weight_changes
    index = d.decisions.index(removal)
    raise_ = next(dec for dec in d.decisions[index:] if dec.weight_changes)
    assert raise_.state.match_observed is None  # the removal was seen before the weight moved
    assert [w.target for w in raise_.weight_changes] == [CANARY_ONLY]


def test_the_judge_is_told_the_share_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[JudgeInput] = []

    def spy(analysis: Analysis, memory: JudgeMemory, inp: JudgeInput) -> tuple[Verdict, JudgeMemory]:
        seen.append(inp)
        return judge(analysis, memory, inp)

    monkeypatch.setattr("rollout.core.evaluating.judge", spy)
    d = ab()
    d.until(lambda d: d.state.step == 1)
    assert seen and all(inp.weight is None for inp in seen)
    assert any(inp.at_weight and inp.interval is not None and inp.interval.canary.requests > 0 for inp in seen)


def test_min_requests_applies_to_the_matching_requests() -> None:
    d = Driver(policy(steps=AB_STEPS), traffic=Traffic(rps=10, matching=0.01))  # 0.1 canary req/s
    for _ in range(20):
        d.tick()
    assert d.state.step == 0 and d.state.verdict is not None
    assert d.state.verdict.summary.startswith("hold") and "canary requests" in d.state.verdict.summary


def test_a_beta_failing_for_matching_requests_rolls_back_without_touching_stable() -> None:
    d = ab()
    d.traffic.canary_errors = 0.3
    d.until(lambda d: d.state.phase.final)
    assert d.state.phase is Phase.ROLLED_BACK
    assert d.matches == [None, BETA_MATCH, None] and d.visited == [0]  # weights never moved
    rollback = next(dec for dec in d.decisions if dec.state.phase is Phase.ROLLING_BACK)
    [removal] = match_actions(rollback.actions)
    assert removal.target is None and removal.check is False and removal.purpose is WeightPurpose.ROLLBACK


def test_match_with_a_weight_puts_the_route_first_then_the_weight() -> None:
    steps: list[dict[str, Any]] = [{"match": {**BETA, "weight": 10}}, {"setWeight": 50}, {"setWeight": 100}]
    d = Driver(policy(steps=steps))
    first = d.tick()
    assert [a.target for a in match_actions(first.actions)] == [BETA_MATCH] and not first.weight_changes
    second = d.tick()
    assert [a.target for a in weight_actions(second.actions)] == [Weights(10, 90)]
    d.tick()
    assert d.state.in_place and d.share() == pytest.approx(0.05 + 0.95 * 0.1)
    d.until(lambda d: d.state.phase is Phase.PROMOTED)
    assert d.visited == [0, 10, 50, 100] and d.matches == [None, BETA_MATCH, None]


@pytest.mark.parametrize("kind", [CommandKind.ABORT, CommandKind.PROMOTE_FULL])
def test_abort_and_promote_remove_the_managed_route_first(kind: CommandKind) -> None:
    steps: list[dict[str, Any]] = [{"match": {**BETA, "weight": 20}}, {"pause": {}}, {"setWeight": 100}]
    d = Driver(policy(steps=steps))
    d.until(lambda d: d.state.phase is Phase.PAUSED)
    assert d.match == BETA_MATCH and d.live == Weights(20, 80)
    decision = d.tick([command(kind, d.now)])
    first = decision.actions[: len(decision.match_changes) + len(decision.weight_changes)]
    assert match_actions(first)[0].target is None
    if kind is CommandKind.ABORT:  # both on one tick, removal first
        assert [type(a).__name__ for a in first] == ["SetMatch", "SetWeights"]
    else:  # promotion waits until the removal is seen
        assert not decision.weight_changes
    d.until(lambda d: d.state.phase.final)
    assert managed(d) is None
    assert d.live == (STABLE_ONLY if kind is CommandKind.ABORT else CANARY_ONLY)


def test_a_crash_before_the_write_is_repaired_and_a_removal_retried_until_seen() -> None:
    d = ab()
    d.tick()
    d.match = None  # died between persisting the state and creating the managed route
    again = d.tick()
    [put] = match_actions(again.actions)
    assert put.purpose is WeightPurpose.REAPPLY and put.target == BETA_MATCH
    d.tick()
    assert d.state.match_observed == BETA_MATCH
    d.tick([command(CommandKind.ABORT, d.now)])
    d.match = BETA_MATCH  # the removal was lost too
    for _ in range(3):
        d.tick()
    assert d.state.phase is Phase.ABORTED and d.match is None


def test_someone_deleting_the_managed_route_is_drift_and_resume_restores_it() -> None:
    d = ab()
    d.until(lambda d: d.state.match_observed == BETA_MATCH)
    d.edit_match(None)
    for _ in range(5):
        decision = d.tick()
        assert not match_actions(decision.actions) and not weight_actions(decision.actions)
    assert d.state.phase is Phase.PAUSED and d.state.pause_reason is PauseReason.DRIFT
    assert "managed route" in d.state.message
    resumed = d.tick([command(CommandKind.RESUME, d.now)])
    assert [a.target for a in match_actions(resumed.actions)] == [BETA_MATCH]
    d.tick()
    assert managed(d) == BETA_MATCH and phase_of(d) is Phase.PROGRESSING


def test_an_edited_or_foreign_managed_route_is_drift_and_abort_removes_it() -> None:
    d = ab()
    d.until(lambda d: d.state.match_observed == BETA_MATCH)
    edited = RouteMatch(headers=(MatchRule("X-Experiment-ID", MatchKind.PREFIX, "b"),), extra="target: other")
    d.edit_match(edited)
    d.tick()
    assert d.state.pause_reason is PauseReason.DRIFT and d.match == edited
    notes = [a for dec in d.decisions for a in dec.actions if isinstance(a, Notify) and a.event == "rollout.drift"]
    assert len(notes) == 1
    d.tick([command(CommandKind.ABORT, d.now)])
    d.until(lambda d: d.state.phase.final)
    assert phase_of(d) is Phase.ABORTED and managed(d) is None and d.live == STABLE_ONLY


def test_a_permanent_failure_to_create_it_pauses_once() -> None:
    problem = RouteProblem(ProblemKind.SCHEMA, "a tcpRoute cannot match headers")
    d = ab()
    d.write_problem = problem
    for _ in range(10):
        d.tick()
    assert d.state.phase is Phase.PAUSED and d.state.pause_reason is PauseReason.ROUTE_ERROR
    assert sum(len(dec.match_changes) for dec in d.decisions) == 1
    assert d.state.route_problem == problem and d.match is None


def test_a_superseded_a_b_run_hands_its_managed_route_to_the_next_run() -> None:
    d = ab()
    d.until(lambda d: d.state.match_observed == BETA_MATCH)
    d.policy = policy(steps=[{"setWeight": 10}, {"setWeight": 100}])
    d.until(lambda d: d.state.revision == d.policy.revision and d.state.observed == Weights(10, 90))
    assert d.match is None and d.matches == [None, BETA_MATCH, None]


def test_hold_aborts_remove_the_managed_route_before_the_weights() -> None:
    d = Driver(policy(steps=[{"match": {**BETA, "weight": 20}}, {"pause": {}}, {"setWeight": 100}]))
    d.until(lambda d: d.state.phase is Phase.PAUSED)
    obs = Observations(route=d.live, match=d.match, commands=(command(CommandKind.ABORT, d.now),))
    decision = hold(d.state, obs, d.now, "the spec is invalid")
    assert [type(a).__name__ for a in decision.actions] == ["SetMatch", "SetWeights"]
    done = hold(decision.state, Observations(route=STABLE_ONLY, match=None), d.now, "the spec is invalid")
    assert done.state.phase is Phase.ABORTED and done.state.match is None


def test_replaying_an_a_b_tick_gives_the_same_decision() -> None:
    d = ab()
    for _ in range(6):
        before = d.state
        decision = d.tick()
        assert decide(d.policy, before, d.last_observations, d.times[-1]) == decision


def test_every_a_b_state_survives_the_status_round_trip() -> None:
    d = Driver(policy(steps=[{"match": {**BETA, "weight": 20}}, {"pause": {}}, {"setWeight": 100}]))
    d.write_problem = RouteProblem(ProblemKind.CONFLICT, "lost a race")
    states = []
    for _ in range(12):
        d.tick()
        states.append(d.state)
    healthy = Driver(d.policy)
    healthy.until(lambda d: d.state.phase is Phase.PAUSED)
    states.extend(dec.state for dec in healthy.decisions)
    assert any(s.match_pending is not None and s.match_pending.before is None for s in states)
    assert any(s.match_observed is not None for s in states)
    for state in states:
        assert persisting.load(json.loads(json.dumps(persisting.dump(state)))) == state


def test_a_managed_route_that_cannot_be_written_is_a_write_failure_in_the_conditions() -> None:
    d = ab()
    d.write_problem = RouteProblem(ProblemKind.FORBIDDEN, 'cannot create resource "gatewayroutes"')
    for _ in range(3):
        d.tick()
    found = {c["type"]: c for c in conditions(d.state, [], d.now, generation=1)}
    assert (found["Degraded"]["status"], found["Degraded"]["reason"]) == ("True", "RouteWriteFailed")
    assert "gatewayroutes" in found["Degraded"]["message"]
