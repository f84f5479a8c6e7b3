"""Property tests: the engine's invariants hold for any policy and any sequence of traffic, metrics
outcomes, operator commands, hand edits and route failures: a decision depends only on its inputs
and never on the wording of the state's messages; weights always sum to 100 and never exceed the
step's; no weight goes up on a tick whose check failed; a person's edit is never overwritten except
to roll back; nothing is promoted without a passing verdict with enough data (or a person forcing
it); status reports the weights the route carries (README "What a step means")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.core.actions import WeightPurpose
from rollout.core.engine import decide
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
from tests.core.factories import Driver, Traffic, command, policy, shape


@st.composite
def policies(draw: st.DrawFn) -> Rollout:
    weights = sorted(draw(st.lists(st.integers(0, 100), min_size=1, max_size=4)))
    steps: list[dict[str, Any]] = [{"setWeight": w} for w in weights]
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


@dataclass(frozen=True)
class Event:
    traffic: str  # good | bad | thin
    metrics: Outcome | None
    command: CommandKind | None
    edit: Weights | None
    write_fails: ProblemKind | None


events = st.builds(
    Event,
    traffic=st.sampled_from(["good"] * 4 + ["bad", "thin"]),
    metrics=st.sampled_from([Outcome.OK] * 6 + [Outcome.NO_DATA, Outcome.UNAVAILABLE, Outcome.QUERY_ERROR, None]),
    command=st.sampled_from([None] * 12 + list(CommandKind)),
    edit=st.sampled_from([None] * 20 + [STABLE_ONLY, Weights(33, 67), Weights(100, 0)]),
    write_fails=st.sampled_from([None] * 12 + [ProblemKind.CONFLICT, ProblemKind.SCHEMA]),
)

_TRAFFIC = {
    "good": Traffic(rps=100),
    "bad": Traffic(rps=100, canary_errors=0.3),
    "thin": Traffic(rps=0.5),
}


def _step_weight(p: Rollout, step: int) -> int:
    """The largest canary weight the plan allows while at ``step`` (the last setWeight up to it)."""
    weights = [s.set_weight for s in p.spec.steps[: step + 1] if s.set_weight is not None]
    return weights[-1] if weights else 0


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
        commands = [command(e.command, d.now, n=i)] if e.command else []
        if e.command in (CommandKind.RESUME, CommandKind.ABORT, CommandKind.RETRY):
            drifted = False
        before = d.state
        decision = d.tick(commands)
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
                assert move.target.canary <= (before.observed or STABLE_ONLY).canary
        if drifted:  # a person's edit is never overwritten, except to roll back
            assert all(m.purpose is WeightPurpose.ROLLBACK for m in decision.weight_changes)
        if s.phase is Phase.PROMOTED and before.phase is not Phase.PROMOTED:
            forced = "gates skipped" in s.end_reason
            assert forced or s.promotable or (s.verdict is not None and s.verdict.enough_data)
        if obs.route is not None and s.phase.active:
            assert s.observed == obs.route  # status reports what the route carries, never an intent


@given(policies(), st.lists(events, max_size=30), st.data())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_abort_always_ends_at_stable_100(p: Rollout, history: list[Event], data: st.DataObject) -> None:
    d = Driver(p)
    for i, e in enumerate(history):
        d.traffic, d.metrics = _TRAFFIC[e.traffic], e.metrics
        d.tick([command(e.command, d.now, n=i)] if e.command else [])
    d.write_problem = None
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
        planned = [0, *dict.fromkeys(w for w in p.spec.weights if w > 0)]
        if planned[-1] != 100:
            planned.append(100)
        assert d.visited == planned
