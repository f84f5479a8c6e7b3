"""``rollout plan`` for A/B steps: the step and the gates after it are marked A/B, ``--rps`` warns
that the canary's share is unknown until traffic arrives, and sizes the step at the policy's
``expectedShare`` estimate when there is one."""

from __future__ import annotations

from typing import Any

from rollout.core.planning import plan
from tests.core.factories import BETA, policy


def _ab(**match: Any) -> list[dict[str, Any]]:
    return [{"match": {**BETA, **match}}, {"pause": {"duration": "10m"}}, {"setWeight": 100}]


def test_an_a_b_step_and_the_gates_after_it_are_marked_and_timed_like_a_weight_step() -> None:
    schedule = plan(policy(steps=_ab(), judge="sequential", stepDuration="2m"))
    kinds = [(r.kind, r.ab, r.canary) for r in schedule.steps]
    assert kinds == [("match", True, 0), ("pause", True, 0), ("setWeight", False, 100)]
    first = schedule.steps[0]
    assert first.min_duration.total_seconds() == 120 and "X-Experiment-ID=beta" in first.gate
    assert not any("unknown" in w for w in schedule.warnings)  # only with --rps


def test_rps_warns_that_the_share_is_unknown_and_sizes_nothing_without_an_estimate() -> None:
    schedule = plan(policy(steps=_ab(), judge="sequential"), rps=200)
    assert schedule.steps[0].sizing is None
    [warning] = [w for w in schedule.warnings if "step 1" in w]
    assert "share is unknown until traffic arrives" in warning and "expectedShare" in warning
    assert schedule.expected_time_to_promote is None  # an unsized A/B step: nobody can say


def test_rps_sizes_an_a_b_step_at_its_estimated_share_with_its_weight_of_the_rest() -> None:
    schedule = plan(policy(steps=_ab(expectedShare=5, weight=10), judge="sequential"), rps=200)
    sizing = schedule.steps[0].sizing
    assert sizing is not None
    assert sizing.weight == round(100 * (0.05 + 0.95 * 0.10))  # 15%: the matches plus 10% of the rest
    assert sizing.canary_rps == 200 * sizing.weight / 100
    assert any("sized at the estimated 5%" in w for w in schedule.warnings)
