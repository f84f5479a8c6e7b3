"""``plan`` and ``simulate`` describe the same step semantics: a healthy canary with plenty of
traffic, run through the real shell on the fake clock (``simulate``), never ends a step before the
minimum ``plan`` prints and promotes no sooner than ``plan``'s minimum time to promote; under the
threshold judge (which passes as soon as it has ``minRequests`` at the weight) it ends each step
within one analysis interval plus one scrape of that minimum (the grid the judge reads on). The
sequential judge may take longer at small weights: that is the evidence ``plan --rps`` sizes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.core.planning import plan
from rollout.policy.models import Rollout
from rollout.runtime.simulating import Scenario, simulate
from tests.runtime.fakes import rollout_doc


@st.composite
def timed_policies(draw: st.DrawFn) -> Rollout:
    weights = sorted(set(draw(st.lists(st.integers(1, 100), min_size=1, max_size=4))))
    steps: list[dict[str, Any]] = [{"setWeight": w} for w in weights]
    if draw(st.booleans()):
        seconds = draw(st.sampled_from([5, 10, 45, 90]))
        steps.insert(draw(st.integers(1, len(steps))), {"pause": {"duration": f"{seconds}s"}})
    interval = draw(st.sampled_from([10, 30]))
    step_duration = interval * draw(st.sampled_from([1, 2, 3]))
    doc = rollout_doc(
        steps=steps,
        interval=f"{interval}s",
        stepDuration=f"{step_duration}s",
        judge=draw(st.sampled_from(["threshold", "sequential"])),
    )
    return Rollout.model_validate(doc)


@given(timed_policies())
@settings(max_examples=40, deadline=None)
def test_a_healthy_simulation_keeps_to_the_plan(policy: Rollout) -> None:
    planned = plan(policy)
    sim = simulate(policy, Scenario.HEALTHY, rps=20_000.0)
    assert sim.state.phase.value == "Promoted", (sim.state.message, [e.to_dict() for e in sim.events][-3:])
    starts: dict[int, float] = {}
    for event in sim.events:
        if event.step >= 1:
            starts.setdefault(event.step, event.seconds)
    interval = policy.spec.analysis.interval.total_seconds()
    scrape = min(15.0, interval)
    slack = interval + scrape + 1.0
    for row in planned.steps:
        if row.number + 1 not in starts:
            continue  # the last step ends in the promotion
        lasted = starts[row.number + 1] - starts[row.number]
        minimum = row.min_duration.total_seconds()
        assert lasted >= minimum - 0.01, f"step {row.number} lasted {lasted}s, plan says at least {minimum}s"
        if policy.spec.analysis.judge.value == "threshold":
            assert lasted <= minimum + slack, f"step {row.number} lasted {lasted}s, plan's minimum {minimum}s"
    total = sim.ended_at - starts[1]
    assert total >= planned.min_time_to_promote.total_seconds() - 0.01
