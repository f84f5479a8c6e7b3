"""Property tests: the invariants of DESIGN.md hold for any policy and any sequence of observations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.core.actions import SetWeights, WeightPurpose
from rollout.core.engine import decide
from rollout.core.states import (
    STABLE_ONLY,
    ArmCounts,
    Command,
    CommandKind,
    MetricsSample,
    Observations,
    Outcome,
    Phase,
    RolloutState,
    VerdictKind,
    Weights,
)
from rollout.policy.models import Rollout
from tests.core.factories import T0, policy

_GOOD = MetricsSample(Outcome.OK, ArmCounts(1000, 0, 0), ArmCounts(9000, 9, 0))
_BAD = MetricsSample(Outcome.OK, ArmCounts(1000, 300, 0), ArmCounts(9000, 9, 0))
_THIN = MetricsSample(Outcome.OK, ArmCounts(3, 0, 0), ArmCounts(30, 0, 0))
_SLOW = MetricsSample(Outcome.OK, ArmCounts(1000, 0, 400), ArmCounts(9000, 9, 0))
_MISSING = [
    MetricsSample(o, detail=o.value)
    for o in (Outcome.NO_DATA, Outcome.ZERO_TRAFFIC, Outcome.NAN, Outcome.COUNTER_RESET, Outcome.UNAVAILABLE)
]

samples = st.sampled_from([_GOOD, _BAD, _THIN, _SLOW, None, *_MISSING])
missing_samples = st.sampled_from([_THIN, None, *_MISSING])
operator = st.sampled_from(
    [None] * 6
    + [
        CommandKind.APPROVE,
        CommandKind.PAUSE,
        CommandKind.RESUME,
        CommandKind.ABORT,
        CommandKind.RETRY,
        CommandKind.PROMOTE,
    ]
)


@st.composite
def policies(draw: st.DrawFn) -> Rollout:
    weights = sorted(draw(st.lists(st.integers(0, 100), min_size=1, max_size=5)))
    steps: list[dict[str, Any]] = [{"setWeight": w} for w in weights]
    for _ in range(draw(st.integers(0, 2))):
        gates: list[dict[str, Any]] = [{"approval": {}}, {"pause": {}}, {"pause": {"duration": "1m"}}]
        gate = draw(st.sampled_from(gates))
        steps.insert(draw(st.integers(0, len(steps))), gate)
    return policy(
        steps=steps,
        noData=draw(st.sampled_from(["hold", "fail", "pass"])),
        failureLimit=draw(st.integers(1, 3)),
        stepDuration=draw(st.sampled_from(["30s", "1m", "2m"])),
    )


@dataclass
class Tick:
    sample: MetricsSample | None
    command: CommandKind | None
    lost_write: bool  # the runtime crashed after persisting the decision, before writing the route


ticks = st.lists(
    st.builds(Tick, samples, operator, st.booleans()),
    min_size=1,
    max_size=60,
)


def run(p: Rollout, script: list[Tick], *, drift_at: int | None = None) -> list[tuple[RolloutState, Any, Weights]]:
    """Drive decide() like the runtime; returns (state before, decision, live weights before) per tick."""
    state, live, now = RolloutState(), STABLE_ONLY, T0
    out = []
    for i, tick in enumerate(script):
        if drift_at == i and live.canary not in (0, 100):
            live = Weights.of_canary(live.canary + 1)
        cmds = (Command(tick.command, "op", now, f"c{i}"),) if tick.command else ()
        decision = decide(p, state, Observations(weights=live, metrics=tick.sample, commands=cmds), now)
        out.append((state, decision, live))
        state = decision.state
        if not tick.lost_write:
            for action in decision.actions:
                if isinstance(action, SetWeights):
                    live = action.target
        now += timedelta(seconds=30)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(), ticks)
def test_weights_are_whole_percentages_summing_to_100_and_never_above_the_step(p: Rollout, script: list[Tick]) -> None:
    for _before, decision, _live in run(p, script):
        for move in decision.weight_changes:
            assert move.target.canary + move.target.stable == 100
            assert isinstance(move.target.canary, int)
            if move.purpose is WeightPurpose.STEP:
                step = p.spec.steps[decision.state.step]
                assert step.set_weight == move.target.canary


@settings(max_examples=150, deadline=None)
@given(policies(), ticks)
def test_canary_never_rises_in_a_decision_that_recorded_a_failure(p: Rollout, script: list[Tick]) -> None:
    for before, decision, live in run(p, script):
        failed = decision.state.failures > before.failures and decision.state.revision == before.revision
        if failed:
            for move in decision.weight_changes:
                assert move.target.canary <= max(live.canary, before.weights.canary)


@settings(max_examples=150, deadline=None)
@given(policies(), st.lists(st.builds(Tick, missing_samples, st.none(), st.booleans()), min_size=1, max_size=80))
def test_missing_or_thin_data_never_promotes(p: Rollout, script: list[Tick]) -> None:
    for _before, decision, _live in run(p, script):
        assert decision.state.phase not in (Phase.PROMOTING, Phase.PROMOTED)


@settings(max_examples=150, deadline=None)
@given(policies(), ticks)
def test_promotion_only_after_every_gate_and_a_passing_judgement(p: Rollout, script: list[Tick]) -> None:
    history = run(p, script)
    approvals_needed = sum(1 for s in p.spec.steps if s.approval is not None)
    approved = resumed = 0
    for i, (before, decision, _live) in enumerate(history):
        kind = script[i].command
        approved += kind is CommandKind.APPROVE
        resumed += kind in (CommandKind.RESUME, CommandKind.PROMOTE)
        if decision.state.phase is Phase.PROMOTED and before.phase is not Phase.PROMOTED:
            verdict = decision.state.verdict
            forced = any(script[j].command is CommandKind.PROMOTE for j in range(i + 1))
            if not forced:
                assert verdict is not None and verdict.kind is VerdictKind.PASS and verdict.enough_data
                assert approved >= approvals_needed or resumed > 0


@settings(max_examples=100, deadline=None)
@given(policies(), ticks, st.integers(0, 200))
def test_rollback_ends_at_stable_100_and_repeating_it_is_harmless(p: Rollout, script: list[Tick], seed: int) -> None:
    del seed
    history = run(p, [*script, Tick(_GOOD, CommandKind.ABORT, False)])
    state = history[-1][1].state
    now = T0 + timedelta(days=1)
    if state.phase is Phase.PROMOTED or state.phase is Phase.PENDING:
        return
    live = STABLE_ONLY if state.phase is Phase.ROLLING_BACK else state.weights
    for _ in range(3):  # the rollback write may be lost any number of times: it is simply repeated
        decision = decide(p, state, Observations(weights=state.prior_weights, metrics=_GOOD), now)
        if state.phase is Phase.ROLLING_BACK:
            assert [m.target for m in decision.weight_changes] in ([STABLE_ONLY], [])
    decision = decide(p, state, Observations(weights=live, metrics=_GOOD), now)
    final = decide(p, decision.state, Observations(weights=STABLE_ONLY, metrics=_GOOD), now)
    if state.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED):
        assert final.state.phase in (Phase.ROLLED_BACK, Phase.ABORTED)
        assert final.state.weights == STABLE_ONLY
        again = decide(p, final.state, Observations(weights=STABLE_ONLY, metrics=_GOOD), now)
        assert not again.weight_changes and again.state.phase is final.state.phase


@settings(max_examples=100, deadline=None)
@given(policies(), ticks)
def test_replaying_the_same_inputs_gives_the_same_decision(p: Rollout, script: list[Tick]) -> None:
    for before, decision, live in run(p, script):
        assert decision.state.updated_at is not None
        now = decision.state.updated_at
        commands = ()
        replay = decide(p, before, Observations(weights=live, metrics=None, commands=commands), now)
        replay2 = decide(p, before, Observations(weights=live, metrics=None, commands=commands), now)
        assert replay == replay2
    first, second = run(p, script), run(p, script)
    assert [d for _, d, _ in first] == [d for _, d, _ in second]


@settings(max_examples=100, deadline=None)
@given(policies(), ticks, st.integers(0, 59))
def test_drift_is_never_overwritten_without_a_person(p: Rollout, script: list[Tick], at: int) -> None:
    script = [Tick(t.sample, t.command if t.command is not CommandKind.RESUME else None, False) for t in script]
    history = run(p, script, drift_at=at)
    for i, (before, decision, live) in enumerate(history):
        if i < at or before.phase not in (Phase.PROGRESSING, Phase.AWAITING_APPROVAL, Phase.PAUSED):
            continue
        if live != before.weights and live != before.prior_weights:
            rollback = decision.state.phase is Phase.ROLLING_BACK
            assert rollback or not decision.weight_changes
