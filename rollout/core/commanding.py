"""Operator commands (approve, abort, promote, pause, resume, retry) applied to a RolloutState.

Owns what each command means in each phase and who may give it. Every command gets a
``CommandResult`` (accepted, or why not), is applied at most once (by id) and cannot wedge the
rollout: commands are taken one by one, ``abort`` first whatever its time stamp (it wins over
everything given with it), and a command that does not apply in the current phase is recorded
and ignored with the reason. Who asked is what the API server authenticated (``Command.by``);
the policy's approver lists are checked here. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC
from typing import Protocol

from rollout.core.states import (
    Command,
    CommandKind,
    CommandResult,
    PauseReason,
    PendingMatch,
    PendingWrite,
    Phase,
    RolloutState,
)
from rollout.core.ticking import Tick
from rollout.policy.models import Rollout


class _Ignored(Protocol):
    def __call__(self, why: str) -> CommandResult: ...


class _Done(Protocol):
    def __call__(self, state: RolloutState, message: str = "") -> CommandResult: ...


_KEEP_IDS = 200
_RUNNING = (Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL)


def approval_key(state: RolloutState) -> str:
    """The identity of the approval request of the current step of the current run."""
    return f"approval-{state.revision}-{state.step}"


def _order(cmd: Command) -> tuple[int, float, str]:
    at = cmd.at if cmd.at.tzinfo is not None else cmd.at.replace(tzinfo=UTC)
    return (0 if cmd.kind is CommandKind.ABORT else 1, at.timestamp(), cmd.id)


def apply_commands(t: Tick, commands: Iterable[Command]) -> None:
    """Apply every command not handled yet: an abort wins (every other command given with it is
    ignored), otherwise oldest first."""
    fresh = [c for c in sorted(commands, key=_order) if c.id not in t.state.handled_commands]
    aborting = any(c.kind is CommandKind.ABORT and not _refusal(t.policy, c) for c in fresh)
    for cmd in fresh:
        if aborting and cmd.kind is not CommandKind.ABORT:
            result = CommandResult(
                cmd.id, accepted=False, message=f"ignored {cmd.kind.value} by {cmd.by}: an abort was given with it"
            )
        else:
            result = _apply(t, cmd)
        t.state = replace(t.state, handled_commands=(*t.state.handled_commands, cmd.id)[-_KEEP_IDS:])
        t.results.append(result)
        t.say(result.message)


def _refusal(policy: Rollout, cmd: Command) -> str:
    """Why ``cmd``'s requester may not give it (empty: allowed)."""
    if cmd.refusal:
        return cmd.refusal
    if cmd.kind not in (CommandKind.APPROVE, CommandKind.ABORT) or not (cmd.slack_user or cmd.ref):
        return ""
    if cmd.kind is CommandKind.APPROVE or cmd.ref:
        approvers = policy.spec.approvals
        if cmd.slack_user:
            allowed = approvers.slack.approvers if approvers.slack else []
            if allowed and cmd.slack_user not in allowed and not set(cmd.slack_groups) & set(allowed):
                return f"Slack user {cmd.slack_user} is not an approver of {policy.key}"
    return ""


def _apply(t: Tick, cmd: Command) -> CommandResult:
    s, now = t.state, t.now
    who = f"{cmd.kind.value} by {cmd.by}" + (f" (Slack {cmd.slack_user})" if cmd.slack_user else "")
    who += f": {cmd.reason}" if cmd.reason else ""

    def ignored(why: str) -> CommandResult:
        return CommandResult(cmd.id, accepted=False, message=f"ignored {who}: {why}")

    def done(state: RolloutState, message: str = "") -> CommandResult:
        t.state = state
        return CommandResult(cmd.id, accepted=True, message=message or who)

    refusal = _refusal(t.policy, cmd)
    if refusal:
        return CommandResult(cmd.id, accepted=False, message=f"refused {who}: {refusal}")
    phase = s.phase
    if cmd.ref and (cmd.ref != approval_key(s) or phase is not Phase.AWAITING_APPROVAL):
        return ignored(f"it answers approval request {cmd.ref}, which is no longer pending")
    if cmd.kind is CommandKind.ABORT:
        person = f"slack:{cmd.slack_user}" if cmd.slack_user else cmd.by  # who clicked, not the daemon recording it
        if phase is Phase.ROLLING_BACK:
            return done(replace(s, aborted_by=s.aborted_by or person), f"{who} (already rolling back)")
        if phase.active or phase is Phase.PENDING:
            reason = f"aborted by {person}" + (f": {cmd.reason}" if cmd.reason else "")
            return done(
                replace(
                    s,
                    phase=Phase.ROLLING_BACK,
                    aborted_by=person,
                    pause_reason=None,
                    pause_detail="",
                    end_reason=reason,
                    message=f"aborting: {who}",
                )
            )
        return ignored(f"nothing to abort in phase {phase.value}")
    if phase is Phase.ROLLING_BACK:
        return ignored("the run is rolling back")
    if cmd.kind is CommandKind.RETRY:
        if phase in (Phase.ROLLED_BACK, Phase.ABORTED):
            return done(
                RolloutState(
                    phase=Phase.PENDING,
                    revision=s.revision,
                    desired=s.desired,
                    observed=s.observed,
                    match=s.match,
                    match_observed=s.match_observed,
                    match_pending=s.match_pending,
                    handled_commands=s.handled_commands,
                    message=f"retrying: {who}",
                )
            )
        return ignored("only a rolled-back or aborted run can be retried")
    if phase not in _RUNNING:
        return ignored(f"not applicable in phase {phase.value}")
    if cmd.kind is CommandKind.PAUSE:
        if phase is Phase.PAUSED:
            return ignored(f"already paused ({s.pause_reason.value if s.pause_reason else 'paused'})")
        return done(
            replace(s, phase=Phase.PAUSED, pause_reason=PauseReason.MANUAL, pause_detail=who, message=f"paused: {who}")
        )
    if cmd.kind is CommandKind.RESUME:
        return _resume(t, s, who, ignored, done)
    if cmd.kind is CommandKind.APPROVE:
        waiting = phase is Phase.AWAITING_APPROVAL or s.pause_reason is PauseReason.APPROVAL_TIMEOUT
        if not waiting:
            return ignored("no approval is pending")
        return done(
            replace(
                s,
                phase=Phase.PROGRESSING,
                pause_reason=None,
                pause_detail="",
                approved_by=cmd.by if not cmd.slack_user else f"slack:{cmd.slack_user}",
                approvals=(*s.approvals, f"step {s.number}: {cmd.slack_user or cmd.by}")[-20:],
                message=f"approved: {who}",
            )
        )
    if cmd.kind in (CommandKind.PROMOTE, CommandKind.PROMOTE_FULL) and s.pause_reason is PauseReason.DRIFT:
        return ignored("someone else changed the route's weights; `rollout resume` or `rollout abort` first")
    if cmd.kind is CommandKind.PROMOTE:
        if s.step >= len(t.spec.steps):
            return ignored("no step left to skip")
        return done(
            replace(
                s,
                step=s.step + 1,
                step_started_at=now,
                weight_since=None,
                phase=Phase.PROGRESSING,
                pause_reason=None,
                pause_detail="",
                approved_by="",
                approval_requested_at=None,
                message=f"step {s.number} skipped: {who}",
            )
        )
    # PROMOTE_FULL
    return done(
        replace(
            s,
            phase=Phase.PROMOTING,
            pause_reason=None,
            pause_detail="",
            end_reason=f"promoted by {cmd.by}, gates skipped",
            message=f"promoting: {who}",
        )
    )


def _resume(t: Tick, s: RolloutState, who: str, ignored: _Ignored, done: _Done) -> CommandResult:
    if s.phase is not Phase.PAUSED or s.pause_reason is None:
        return ignored("not paused")
    reason, now = s.pause_reason, t.now
    if reason is PauseReason.STEP:
        return done(
            replace(
                s,
                step=s.step + 1,
                step_started_at=now,
                weight_since=None,
                phase=Phase.PROGRESSING,
                pause_reason=None,
                pause_detail="",
                message=f"pause step ended: {who}",
            )
        )
    if reason is PauseReason.APPROVAL_TIMEOUT:
        return done(
            replace(
                s,
                phase=Phase.AWAITING_APPROVAL,
                pause_reason=None,
                pause_detail="",
                approval_requested_at=None,  # asked again, in a new message
                message=f"waiting for approval again: {who}",
            )
        )
    live = t.obs.route or s.observed
    restore = None
    if live is not None and live != s.desired:
        # Drift or a write that failed for good: put rollout's weights back (the route now carries `live`).
        restore = PendingWrite(target=s.desired, before=live, decided_at=now)
    live_match = t.obs.match if t.obs.route is not None else s.match_observed
    restore_match = None
    if live_match != s.match:  # the same for an A/B step's managed route (written before the weights)
        restore_match = PendingMatch(target=s.match, before=live_match, decided_at=now)
    return done(
        replace(
            s,
            phase=Phase.PROGRESSING,
            pause_reason=None,
            pause_detail="",
            pending=restore or s.pending,
            match_pending=restore_match or s.match_pending,
            route_problem=None,
            route_problem_since=None,
            step_started_at=now,  # the step restarts: its data so far ran on someone else's weights
            weight_since=None if restore or restore_match else s.weight_since,
            message=(f"restoring rollout's route: {who}" if restore or restore_match else f"resumed: {who}"),
        )
    )
