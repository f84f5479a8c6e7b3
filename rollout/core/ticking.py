"""The scratchpad of one ``decide`` call and the Decision it returns.

Owns ``Tick`` (the policy, the state being built, the actions collected, the command results and
the reasons said; it never escapes ``decide``), ``Decision``, and the moves every part of the
engine shares: moving weights, putting an A/B step's managed route in place or removing it,
pausing, rolling back, notifying once. State changes go through
``dataclasses.replace`` on the frozen ``RolloutState``, so mypy checks every field. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rollout.core.actions import Action, Level, Notify, SetMatch, SetWeights, WeightPurpose
from rollout.core.matches import RouteMatch
from rollout.core.states import (
    CommandResult,
    Observations,
    PauseReason,
    PendingMatch,
    PendingWrite,
    Phase,
    RolloutState,
    Weights,
)
from rollout.policy.models import Rollout
from rollout.policy.quantities import format_duration

_KEEP_KEYS = 200


@dataclass(frozen=True)
class Decision:
    """The new state to persist, the actions to execute after persisting it, what became of each
    operator command, and why (one line)."""

    state: RolloutState
    actions: tuple[Action, ...]
    reason: str
    commands: tuple[CommandResult, ...] = ()

    @property
    def weight_changes(self) -> tuple[SetWeights, ...]:
        return tuple(a for a in self.actions if isinstance(a, SetWeights))

    @property
    def match_changes(self) -> tuple[SetMatch, ...]:
        return tuple(a for a in self.actions if isinstance(a, SetMatch))


class Tick:
    """Mutable scratchpad of one decide() call; never escapes it."""

    def __init__(self, policy: Rollout, state: RolloutState, obs: Observations, now: datetime) -> None:
        self.policy, self.spec, self.obs, self.now = policy, policy.spec, obs, now
        self.state = state
        self.actions: list[Action] = []
        self.reasons: list[str] = []
        self.results: list[CommandResult] = []
        self.approval_timed_out = False  # the pending approval's timeout ended it on this tick

    def say(self, reason: str) -> None:
        self.reasons.append(reason)

    def notify(self, key: str, event: str, level: Level, message: str) -> None:
        """Send ``message`` once per run (``key`` is remembered in the state)."""
        if key in self.state.notified:
            return
        self.actions.append(Notify(key=key, event=event, level=level, message=message, verdict=self.state.verdict))
        self.state = replace(self.state, notified=(*self.state.notified, key)[-_KEEP_KEYS:])

    def move(self, target: Weights, purpose: WeightPurpose, reason: str, *, check: bool = True) -> None:
        """Ask for ``target`` on the route; the write stays pending until the route is seen carrying it."""
        before = self.state.observed or self.state.desired
        attempts = 1
        if self.state.pending is not None and self.state.pending.target == target:
            attempts = self.state.pending.attempts + 1
            before = self.state.pending.before
        self.actions.append(
            SetWeights(target=target, expected=self.state.observed if check else None, purpose=purpose, reason=reason)
        )
        self.state = replace(
            self.state,
            desired=target,
            pending=PendingWrite(target=target, before=before, decided_at=self.now, attempts=attempts),
        )

    def set_match(self, target: RouteMatch | None, purpose: WeightPurpose, reason: str, *, check: bool = True) -> None:
        """Ask for the managed route carrying ``target`` (None: removed); pending until seen so."""
        before = self.state.match_observed
        attempts = 1
        pending = self.state.match_pending
        if pending is not None and pending.target == target:
            attempts = pending.attempts + 1
            before = pending.before
        self.actions.append(
            SetMatch(target=target, expected=self.state.match_observed, check=check, purpose=purpose, reason=reason)
        )
        self.state = replace(
            self.state,
            match=target,
            match_pending=PendingMatch(target=target, before=before, decided_at=self.now, attempts=attempts),
        )

    def pause(self, reason: PauseReason, detail: str, message: str) -> None:
        self.state = replace(self.state, phase=Phase.PAUSED, pause_reason=reason, pause_detail=detail, message=message)

    def set_message(self, message: str) -> None:
        self.state = replace(self.state, message=message)


def rollback(t: Tick, reason: str, detail: str = "") -> None:
    """Start rolling back (stable to 100%); the write happens in ``stepping``."""
    t.state = replace(
        t.state,
        phase=Phase.ROLLING_BACK,
        pause_reason=None,
        pause_detail="",
        end_reason=f"{reason}; last: {detail}" if detail else reason,
        message=f"rolling back: {reason}",
    )
    t.say(t.state.message)


def fmt(delta: timedelta) -> str:
    """A duration as people read it, in the policy language (``1m30s``)."""
    return format_duration(timedelta(seconds=round(delta.total_seconds())))
