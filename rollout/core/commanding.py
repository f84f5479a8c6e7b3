"""Operator commands (approve, abort, promote, pause, resume, retry) applied to a RolloutState.

Owns what each command means in each phase; a command that does not apply in the current phase
is recorded as handled and ignored, with the reason. Commands are idempotent by id. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from rollout.core.states import Command, CommandKind, Phase, RolloutState, Weights
from rollout.policy.models import Rollout

PAUSE_STEP = "pause step"
_KEEP_IDS = 100
_RUNNING = (Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL)


class Scratch(Protocol):
    """The engine's tick scratchpad, as far as commands need it."""

    state: RolloutState
    now: datetime

    @property
    def live(self) -> Weights | None: ...

    def say(self, reason: str) -> None: ...


def approval_key(state: RolloutState) -> str:
    """The identity of the approval request of the current step of the current run."""
    return f"approval-{state.revision}-{state.step}"


def apply_commands(policy: Rollout, t: Scratch, commands: Iterable[Command]) -> None:
    """Apply every command not handled yet, oldest first."""
    for cmd in sorted(commands, key=lambda c: (c.at, c.id)):
        if cmd.id in t.state.handled_commands:
            continue
        state, said = _apply(policy, t.state, cmd, t.now, t.live)
        t.state = replace(state, handled_commands=(*state.handled_commands, cmd.id)[-_KEEP_IDS:])
        t.say(said)


def _apply(
    policy: Rollout, s: RolloutState, cmd: Command, now: datetime, live: Weights | None
) -> tuple[RolloutState, str]:
    who = f"{cmd.kind.value} by {cmd.by}" + (f" ({cmd.reason})" if cmd.reason else "")
    phase = s.phase
    if cmd.ref and (cmd.ref != approval_key(s) or phase is not Phase.AWAITING_APPROVAL):
        return s, f"ignored {who}: it answers approval request {cmd.ref}, which is no longer pending"
    if cmd.kind is CommandKind.ABORT:
        if phase.active or phase is Phase.PENDING:
            return replace(
                s,
                phase=Phase.ROLLING_BACK,
                aborted_by=cmd.by,
                end_reason=f"aborted by {cmd.by}" + (f": {cmd.reason}" if cmd.reason else ""),
                message=f"aborting: {who}",
            ), who
        return s, f"ignored {who}: nothing to abort in phase {phase.value}"
    if cmd.kind is CommandKind.RETRY:
        if phase in (Phase.ROLLED_BACK, Phase.ABORTED):
            fresh = RolloutState(
                phase=Phase.PENDING,
                revision=s.revision,
                weights=s.weights,
                prior_weights=s.weights,
                handled_commands=s.handled_commands,
                message=f"retrying: {who}",
            )
            return fresh, who
        return s, f"ignored {who}: only a rolled-back or aborted run can be retried"
    if phase not in _RUNNING:
        return s, f"ignored {who}: not applicable in phase {phase.value}"
    if cmd.kind is CommandKind.PAUSE:
        return replace(s, phase=Phase.PAUSED, pause_reason=f"paused by {cmd.by}", message=f"paused: {who}"), who
    if cmd.kind is CommandKind.RESUME:
        return _resume(s, now, who, live)
    if cmd.kind is CommandKind.APPROVE:
        waiting = phase is Phase.AWAITING_APPROVAL or s.pause_reason.startswith("approval timed out")
        if not waiting:
            return s, f"ignored {who}: no approval is pending"
        return replace(
            s,
            phase=Phase.PROGRESSING,
            pause_reason="",
            approved_by=cmd.by,
            approvals=(*s.approvals, f"step {s.step + 1}: {cmd.by}")[-20:],
            message=f"approved: {who}",
        ), who
    if cmd.kind is CommandKind.PROMOTE:
        if s.step >= len(policy.spec.steps):
            return s, f"ignored {who}: no step left to skip"
        return replace(
            s,
            step=s.step + 1,
            step_started_at=now,
            phase=Phase.PROGRESSING,
            pause_reason="",
            approved_by="",
            approval_requested_at=None,
            message=f"step {s.step + 1} skipped: {who}",
        ), who
    # PROMOTE_FULL
    return replace(
        s,
        phase=Phase.PROMOTING,
        pause_reason="",
        end_reason=f"promoted by {cmd.by}, gates skipped",
        message=f"promoting: {who}",
    ), who


def _resume(s: RolloutState, now: datetime, who: str, live: Weights | None) -> tuple[RolloutState, str]:
    if s.phase is not Phase.PAUSED:
        return s, f"ignored {who}: not paused"
    reason = s.pause_reason
    if reason == PAUSE_STEP:
        return replace(
            s,
            step=s.step + 1,
            step_started_at=now,
            phase=Phase.PROGRESSING,
            pause_reason="",
            message=f"pause step ended: {who}",
        ), who
    if reason.startswith("drift"):
        # Treat the drifted weights as the "prior" of our own write so the engine re-applies ours.
        return replace(
            s,
            phase=Phase.PROGRESSING,
            pause_reason="",
            prior_weights=live or s.prior_weights,
            step_started_at=now,  # the step is judged afresh: its data so far ran on someone else's weights
            message=f"restoring rollout's weights {s.weights}: {who}",
        ), who
    if reason.startswith("approval timed out"):
        return replace(
            s,
            phase=Phase.AWAITING_APPROVAL,
            pause_reason="",
            approval_requested_at=now,
            message=f"waiting for approval again: {who}",
        ), who
    return replace(s, phase=Phase.PROGRESSING, pause_reason="", step_started_at=now, message=f"resumed: {who}"), who
