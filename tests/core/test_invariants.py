"""Property tests: the engine's invariants hold for any policy (A/B match steps included) and any
sequence of traffic, metrics outcomes, operator commands, hand edits (of the weights and of the
managed route), route failures and crashes between persisting a decision and acting on it: a
decision depends only on its inputs and never on the wording of the state's messages; weights
always sum to 100 and never exceed the step's; no weight goes up on a tick whose check failed; a
person's edit is never overwritten except to roll back; nothing is promoted without a passing
verdict with enough data (or a person forcing it); status reports the weights the route carries
(README "What a step means")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rollout.core.actions import SetMatch, SetWeights, WeightPurpose
from rollout.core.engine import decide
from rollout.core.matches import MatchKind, MatchRule, RouteMatch
from rollout.core.readings import Outcome
from rollout.core.states import (
    STABLE_ONLY,
    Command,
    CommandKind,
    PauseReason,
    Phase,
    ProblemKind,
    RouteProblem,
    Weights,
)
from rollout.core.verdicts import VerdictKind
from rollout.policy.models import Rollout
from tests.core.factories import BETA, BETA_MATCH, Driver, Traffic, command, policy, shape


@st.composite
def policies(draw: st.DrawFn) -> Rollout:
    weights = sorted(draw(st.lists(st.integers(0, 100), min_size=1, max_size=4)))
    steps: list[dict[str, Any]] = [{"setWeight": w} for w in weights]
    for _ in range(draw(st.integers(0, 2))):  # A/B steps, with or without a weight of their own
        steps.insert(draw(st.integers(0, len(steps))), {"match": dict(BETA)})
    reached = 0
    for i, step in enumerate(steps):
        if "setWeight" in step:
            reached = step["setWeight"]
        elif draw(st.booleans()):
            above = [s["setWeight"] for s in steps[i:] if "setWeight" in s]
            high = min(above[0] if above else 99, 99)
            if reached <= high:
                reached = step["match"]["weight"] = draw(st.integers(reached, high))
    for _ in range(draw(st.integers(0, 2))):
        gates: list[dict[str, Any]] = [{"approval": {}}, {"pause": {}}, {"pause": {"duration": "1m"}}]
        steps.insert(draw(st.integers(0, len(steps))), draw(st.sampled_from(gates)))
    return policy(
        steps=steps,
        judge=draw(st.sampled_from(["threshold", "sequential"])),
        noData=draw(st.sampled_from(["hold", "fail", "pass"])),
        stepDuration=draw(st.sampled_from(["30s", "1m", "2m"])),
        deadline="20m",
    )


OTHER_MATCH = RouteMatch(headers=(MatchRule("X-Experiment-ID", MatchKind.EXACT, "gamma"),))
UNSET = "unset"  # an Event.match_edit that changes nothing


@dataclass(frozen=True)
class Event:
    traffic: str  # good | bad | thin
    metrics: Outcome | None
    command: CommandKind | None
    edit: Weights | None
    write_fails: ProblemKind | None
    match_edit: RouteMatch | str | None = UNSET  # someone creates, changes or deletes the managed route
    crash: bool = False  # the daemon dies after persisting this tick's state, before acting


events = st.builds(
    Event,
    traffic=st.sampled_from(["good"] * 4 + ["bad", "thin"]),
    metrics=st.sampled_from([Outcome.OK] * 6 + [Outcome.NO_DATA, Outcome.UNAVAILABLE, Outcome.QUERY_ERROR, None]),
    command=st.sampled_from([None] * 12 + list(CommandKind)),
    edit=st.sampled_from([None] * 20 + [STABLE_ONLY, Weights(33, 67), Weights(100, 0)]),
    write_fails=st.sampled_from([None] * 12 + [ProblemKind.CONFLICT, ProblemKind.SCHEMA]),
    match_edit=st.sampled_from([UNSET] * 25 + [None, BETA_MATCH, OTHER_MATCH]),
    crash=st.sampled_from([False] * 8 + [True]),
)

_TRAFFIC = {
    "good": Traffic(rps=100),
    "bad": Traffic(rps=100, canary_errors=0.3),
    "thin": Traffic(rps=0.5),
}


def _ab(p: Rollout) -> bool:
    """The policy has A/B steps (so the runtime reads, and the engine guards, the managed route)."""
    return any(step.match for step in p.spec.steps)


def _step_weight(p: Rollout, step: int) -> int:
    """The largest canary weight the plan allows while at ``step`` (the last setWeight or match weight up to it)."""
    return p.spec.plan_weight(min(step, len(p.spec.steps) - 1))


@given(policies(), st.lists(events, min_size=1, max_size=60))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_invariants_hold_for_any_history(p: Rollout, history: list[Event]) -> None:
    d = Driver(p)
    drifted = False  # someone edited the route and nobody has resumed, aborted or retried since
    for i, e in enumerate(history):
        d.traffic, d.metrics = _TRAFFIC[e.traffic], e.metrics
        d.write_problem = RouteProblem(e.write_fails, "simulated") if e.write_fails else None
        if e.edit is not None and d.state.phase.active and e.edit != d.live:
            d.edit(e.edit)
            drifted = (d.state.pending is None and e.edit != d.state.desired) or drifted
        if not isinstance(e.match_edit, str) and _ab(p) and d.state.phase.active and e.match_edit != d.match:
            d.edit_match(e.match_edit)
            drifted = (d.state.match_pending is None and e.match_edit != d.state.match) or drifted
        commands = [command(e.command, d.now, n=i)] if e.command else []
        if e.command in (CommandKind.RESUME, CommandKind.ABORT, CommandKind.RETRY):
            drifted = False
        before = d.state
        decision = d.tick(commands, crash=e.crash)
        obs = d.last_observations
        again = decide(p, before, obs, d.times[-1])
        assert again == decision  # a decision depends only on its inputs
        reworded = replace(before, message="reworded", pause_detail="reworded", end_reason="reworded")
        assert shape(decide(p, reworded, obs, d.times[-1])) == shape(decision)  # words never decide
        s = decision.state
        for move in decision.weight_changes:
            assert move.target.canary + move.target.stable == 100
            if move.purpose is WeightPurpose.STEP:
                assert move.target.canary <= _step_weight(p, s.step)
            if s.verdict is not None and s.verdict.kind is VerdictKind.FAIL and s.judged_at == d.times[-1]:
                assert move.target.canary <= (obs.route or before.observed or STABLE_ONLY).canary
        if drifted:  # a person's edit is never overwritten, except to roll back
            assert all(m.purpose is WeightPurpose.ROLLBACK for m in decision.weight_changes)
            assert all(m.purpose is WeightPurpose.ROLLBACK for m in decision.match_changes)
        if decision.match_changes and decision.weight_changes:  # the managed route is always written first
            writes = [a for a in decision.actions if isinstance(a, SetMatch | SetWeights)]
            assert isinstance(writes[0], SetMatch)
        if s.phase.final and not before.phase.final:  # a run ends only once its managed route is seen gone
            assert s.match is None and s.match_observed is None and s.match_pending is None
            assert d.match is None
        if s.phase is Phase.PROMOTED and before.phase is not Phase.PROMOTED:
            forced = "gates skipped" in s.end_reason
            assert forced or s.promotable or (s.verdict is not None and s.verdict.enough_data)
        if obs.route is not None and s.phase.active:
            assert s.observed == obs.route  # status reports what the route carries, never an intent
            assert s.match_observed == obs.match


@given(policies(), st.lists(events, max_size=30), st.data())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_abort_always_ends_at_stable_100(p: Rollout, history: list[Event], data: st.DataObject) -> None:
    d = Driver(p)
    for i, e in enumerate(history):
        d.traffic, d.metrics = _TRAFFIC[e.traffic], e.metrics
        d.tick([command(e.command, d.now, n=i)] if e.command else [])
    d.write_problem = None
    if _ab(p) and d.state.phase.active and data.draw(st.booleans()):  # someone else's managed route, or ours altered
        d.edit_match(data.draw(st.sampled_from([BETA_MATCH, OTHER_MATCH])))
    noise = data.draw(st.lists(st.sampled_from(list(CommandKind)), max_size=4))
    naive = data.draw(st.booleans())
    at = d.now.replace(tzinfo=None) if naive else d.now
    batch = [Command(kind=k, by="x", at=at - timedelta(seconds=j), id=f"noise-{j}") for j, k in enumerate(noise)]
    batch.append(Command(kind=CommandKind.ABORT, by="oncall", at=at + timedelta(days=1), id="the-abort"))
    d.tick(batch)
    if d.state.phase.active or d.state.phase is Phase.PENDING:
        d.until(lambda d: not d.state.phase.active, limit=20)
    assert d.live == STABLE_ONLY or d.state.phase is Phase.PROMOTED
    if d.state.phase is not Phase.PROMOTED:
        assert d.state.phase in (Phase.ABORTED, Phase.ROLLED_BACK)
    if d.state.phase.final and d.state.run_started_at is not None:
        assert d.match is None  # the managed route never outlives the run


@given(policies(), st.lists(events, max_size=40), st.sampled_from(["abort", "go on"]), st.lists(st.booleans()))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_managed_route_never_outlives_the_run(
    p: Rollout, history: list[Event], end: str, crashes: list[bool]
) -> None:
    """Whatever crashes, commands, failures and edits came before, once people stop interfering the
    run ends (by an abort, or by approving and resuming until it does) and leaves no managed route."""
    d = Driver(p)
    for i, e in enumerate(history):
        d.traffic, d.metrics = _TRAFFIC[e.traffic], e.metrics
        d.write_problem = RouteProblem(e.write_fails, "simulated") if e.write_fails else None
        if not isinstance(e.match_edit, str) and _ab(p) and d.state.phase.active:
            d.edit_match(e.match_edit)
        d.tick([command(e.command, d.now, n=i)] if e.command else [], crash=e.crash)
    d.write_problem, d.traffic, d.metrics = None, _TRAFFIC["good"], Outcome.OK
    for i in range(300):
        if not (d.state.phase.active or d.state.phase is Phase.PENDING):
            break
        waiting = d.state.phase in (Phase.AWAITING_APPROVAL, Phase.PAUSED)
        go_on = CommandKind.APPROVE if d.state.phase is Phase.AWAITING_APPROVAL else CommandKind.RESUME
        kind = CommandKind.ABORT if end == "abort" or i >= 200 else go_on  # a run that cannot promote is aborted
        d.tick(
            [command(kind, d.now, n=1000 + i)] if waiting or kind is CommandKind.ABORT else [],
            crash=i < len(crashes) and crashes[i],
        )
    assert not d.state.phase.active
    event(f"ended {d.state.phase.value}, managed route used: {any(m is not None for m in d.matches)}")
    if d.state.run_started_at is not None:
        assert d.match is None and d.state.match is None


@given(policies())
@settings(max_examples=60, deadline=None)
def test_a_healthy_run_visits_every_set_weight_in_order_and_no_step_ends_early(p: Rollout) -> None:
    d = Driver(p)
    for i in range(400):
        waiting = d.state.phase is Phase.AWAITING_APPROVAL
        paused_step = d.state.phase is Phase.PAUSED and d.state.pause_reason is PauseReason.STEP
        gate = CommandKind.APPROVE if waiting else CommandKind.RESUME
        before = d.state
        decision = d.tick([command(gate, d.now, n=i)] if waiting or paused_step else [])
        left = p.spec.steps[before.step] if before.step < len(p.spec.steps) else None
        if decision.state.step > before.step and left is not None and left.set_weight and not paused_step:
            assert before.weight_since is not None
            assert d.times[-1] - before.weight_since >= p.spec.analysis.effective_step_duration
        if d.state.phase.final:
            break
    if d.state.phase is Phase.PROMOTED:
        routed = [
            p.spec.plan_weight(i) for i, step in enumerate(p.spec.steps) if step.set_weight is not None or step.match
        ]
        planned = [0, *dict.fromkeys(w for w in routed if w > 0)]
        if planned[-1] != 100:
            planned.append(100)
        assert d.visited == planned
