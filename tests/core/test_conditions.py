"""Status conditions answer "did it work?" the way `kubectl wait` and people expect."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rollout.core.conditions import conditions
from rollout.core.states import PauseReason, PendingWrite, Phase, ProblemKind, RolloutState, RouteProblem, Weights
from tests.core.factories import T0


def by_type(state: RolloutState, **kwargs: str) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conditions(state, [], T0, generation=3, **kwargs)}


@pytest.mark.parametrize(
    ("phase", "completed", "succeeded"),
    [
        (Phase.PROMOTED, ("True", "Promoted"), ("True", "Promoted")),
        (Phase.ROLLED_BACK, ("True", "RolledBack"), ("False", "RolledBack")),
        (Phase.ABORTED, ("True", "Aborted"), ("False", "Aborted")),
        (Phase.PROGRESSING, ("False", "Running"), ("Unknown", "InProgress")),
        (Phase.PENDING, ("False", "Running"), ("Unknown", "Pending")),
    ],
)
def test_completed_and_succeeded(phase: Phase, completed: tuple[str, str], succeeded: tuple[str, str]) -> None:
    got = by_type(RolloutState(phase=phase))
    assert got["Completed"] == completed and got["Succeeded"] == succeeded


def test_paused_carries_the_typed_reason_and_progressing_turns_false() -> None:
    got = by_type(RolloutState(phase=Phase.PAUSED, pause_reason=PauseReason.DRIFT, pause_detail="x"))
    assert got["Paused"] == ("True", "Drift") and got["Progressing"] == ("False", "Drift")


def test_a_failed_write_is_degraded_with_the_reason() -> None:
    state = RolloutState(
        phase=Phase.PAUSED,
        pause_reason=PauseReason.ROUTE_ERROR,
        pending=PendingWrite(Weights(20, 80), Weights(0, 100), T0),
        route_problem=RouteProblem(ProblemKind.SCHEMA, "pruned"),
    )
    assert by_type(state)["Degraded"] == ("True", "RouteWriteFailed")


def test_an_invalid_spec_is_reported() -> None:
    got = by_type(RolloutState(), invalid="spec.steps[0]: bad")
    assert got["PolicyValid"] == ("False", "InvalidSpec") and got["Degraded"] == ("True", "InvalidSpec")


def test_transition_time_is_kept_while_the_status_does_not_change() -> None:
    first = conditions(RolloutState(phase=Phase.PROGRESSING), [], T0, generation=1)
    later = conditions(RolloutState(phase=Phase.PROGRESSING), first, T0 + timedelta(minutes=5), generation=1)
    assert [c["lastTransitionTime"] for c in later] == [c["lastTransitionTime"] for c in first]
    done = conditions(RolloutState(phase=Phase.PROMOTED), first, T0 + timedelta(minutes=5), generation=1)
    completed = next(c for c in done if c["type"] == "Completed")
    assert completed["lastTransitionTime"] == "2026-01-01T00:05:00Z"
