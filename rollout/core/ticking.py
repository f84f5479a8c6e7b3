"""The scratchpad of one ``decide`` call and the Decision it returns.

Owns ``Tick`` (the policy, the state being built, the actions collected and the reasons said; it
never escapes ``decide``), ``Decision``, and the helpers every part of the engine shares. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rollout.core.actions import (
    Action,
    Level,
    Notify,
    SetWeights,
    WeightPurpose,
)
from rollout.core.states import (
    Observations,
    Phase,
    RolloutState,
    Weights,
)
from rollout.policy.models import Rollout

_KEEP_KEYS = 200


@dataclass(frozen=True)
class Decision:
    """The new state to persist, the actions to execute after persisting it, and why (one line)."""

    state: RolloutState
    actions: tuple[Action, ...]
    reason: str

    @property
    def weight_changes(self) -> tuple[SetWeights, ...]:
        return tuple(a for a in self.actions if isinstance(a, SetWeights))


class Tick:
    """Mutable scratchpad of one decide() call; never escapes it."""

    def __init__(self, policy: Rollout, state: RolloutState, obs: Observations, now: datetime) -> None:
        self.policy, self.spec, self.obs, self.now = policy, policy.spec, obs, now
        self.state = state
        self.actions: list[Action] = []
        self.reasons: list[str] = []
        self.failed_now = False  # a check failed in this tick: no weight goes up in it
        self.holding = False  # _judge explained a hold (metrics unavailable, broken query): keep that message

    @property
    def live(self) -> Weights | None:
        return self.obs.weights

    def set(self, **changes: object) -> None:
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]

    def say(self, reason: str) -> None:
        self.reasons.append(reason)

    def notify(self, key: str, event: str, level: Level, message: str) -> None:
        if key in self.state.notified:
            return
        self.actions.append(Notify(key=key, event=event, level=level, message=message, verdict=self.state.verdict))
        self.set(notified=(*self.state.notified, key)[-_KEEP_KEYS:])

    def move(self, target: Weights, purpose: WeightPurpose, reason: str, *, check: bool = True) -> None:
        current = self.state.weights
        self.actions.append(
            SetWeights(target=target, expected=current if check else None, purpose=purpose, reason=reason)
        )
        self.set(weights=target, prior_weights=current)


def rollback(t: Tick, reason: str, detail: str = "") -> None:
    t.set(
        phase=Phase.ROLLING_BACK,
        end_reason=f"{reason}; last: {detail}" if detail else reason,
        message=f"rolling back: {reason}",
    )
    t.say(t.state.message)


def fmt(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
