"""Words never decide: in every paused (and awaiting) sub-state, any command (or none) leads to the
same decision whatever the state's human texts say (``message``, ``pause_detail``, ``end_reason``).
Transitions read ``PauseReason`` and the phase only; rewording a message cannot change behaviour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from rollout.core.engine import decide
from rollout.core.states import CommandKind, Observations, PauseReason, Phase, ProblemKind, RouteProblem, Weights
from tests.core.factories import Driver, command, policy, shape

STEPS: list[dict[str, Any]] = [
    {"setWeight": 10},
    {"pause": {}},
    {"approval": {}},
    {"setWeight": 50},
    {"setWeight": 100},
]


def _step_pause(d: Driver) -> None:
    d.until(lambda d: d.state.pause_reason is PauseReason.STEP)


def _manual(d: Driver) -> None:
    d.until(lambda d: d.state.observed == Weights(10, 90))
    d.tick([command(CommandKind.PAUSE, d.now)])


def _drift(d: Driver) -> None:
    d.until(lambda d: d.state.observed == Weights(10, 90))
    d.edit(Weights(30, 70))
    d.tick()


def _deadline(d: Driver) -> None:
    d.until(lambda d: d.state.observed == Weights(10, 90))
    d.route_problem = RouteProblem(ProblemKind.UNAVAILABLE, "connection refused")
    d.until(lambda d: d.state.pause_reason is PauseReason.DEADLINE, limit=100)
    d.route_problem = None


def _approval_timeout(d: Driver) -> None:
    _step_pause(d)
    d.tick([command(CommandKind.RESUME, d.now)])
    d.until(lambda d: d.state.pause_reason is PauseReason.APPROVAL_TIMEOUT, limit=100)


def _awaiting(d: Driver) -> None:
    _step_pause(d)
    d.tick([command(CommandKind.RESUME, d.now)])
    d.until(lambda d: d.state.phase is Phase.AWAITING_APPROVAL)


def _route_error(d: Driver) -> None:
    d.write_problem = RouteProblem(ProblemKind.SCHEMA, "the route has no weightedTargets")
    d.until(lambda d: d.state.pause_reason is PauseReason.ROUTE_ERROR, limit=100)
    d.write_problem = None


SUB_STATES: dict[str, Callable[[Driver], None]] = {
    "step pause": _step_pause,
    "manual": _manual,
    "drift": _drift,
    "deadline": _deadline,
    "approval timeout": _approval_timeout,
    "awaiting approval": _awaiting,
    "route error": _route_error,
}


@pytest.mark.parametrize("reach", SUB_STATES.values(), ids=SUB_STATES.keys())
@pytest.mark.parametrize("kind", [None, *CommandKind], ids=lambda k: k.value if k else "no command")
def test_rewording_the_state_changes_no_decision(reach: Callable[[Driver], None], kind: CommandKind | None) -> None:
    d = Driver(policy(steps=STEPS, approvals={"timeout": "5m"}, deadline="5m"))
    reach(d)
    assert d.state.phase in (Phase.PAUSED, Phase.AWAITING_APPROVAL), d.state
    commands = (command(kind, d.now, n=99),) if kind is not None else ()
    obs = Observations(route=d.live, reading=d.reading(), commands=commands)
    for later in (timedelta(0), timedelta(minutes=10)):  # now, and after every timer has fired
        now = d.now + later
        reworded = replace(d.state, message="holding: reworded", pause_detail="drift: reworded", end_reason="x")
        assert shape(decide(d.policy, reworded, obs, now)) == shape(decide(d.policy, d.state, obs, now))
