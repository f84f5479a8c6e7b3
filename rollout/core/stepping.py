"""Steps of a run: setWeight, pause and approval gates, promotion and rollback.

Owns what ends each step (a passing verdict after ``stepDuration``, an early conclusive pass, a
pause's duration, an approval), the progress deadline, and the last moves of a run (canary to
100%, or stable to 100%). Pure; called by ``engine.decide`` with the tick's scratchpad.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rollout.core.actions import (
    Level,
    RequestApproval,
    WeightPurpose,
)
from rollout.core.commanding import PAUSE_STEP, approval_key
from rollout.core.states import (
    CANARY_ONLY,
    STABLE_ONLY,
    Phase,
    VerdictKind,
    Weights,
)
from rollout.core.ticking import Tick, fmt, rollback
from rollout.policy.models import TimeoutAction


def advance(t: Tick) -> None:
    """Walk through every step that is satisfied now; stop at the first that is not."""
    for _ in range(len(t.spec.steps) + 2):
        phase = t.state.phase
        if phase is Phase.ROLLING_BACK:
            _finish_rollback(t)
            return
        if phase is Phase.PROMOTING:
            _finish_promotion(t)
            return
        if phase is Phase.PAUSED and t.state.pause_reason != PAUSE_STEP:
            t.say(f"paused: {t.state.pause_reason}")
            return
        if t.state.step >= len(t.spec.steps):
            if not _may_promote(t):
                return
            t.set(phase=Phase.PROMOTING, message="all steps passed; promoting")
            continue
        if not _step_done(t):
            return
        _next_step(t)


def _next_step(t: Tick) -> None:
    t.set(
        step=t.state.step + 1,
        step_started_at=t.now,
        phase=Phase.PROGRESSING,
        pause_reason="",
        approved_by="",
        approval_requested_at=None,
    )


def _step_done(t: Tick) -> bool:
    step = t.spec.steps[t.state.step]
    elapsed = t.now - (t.state.step_started_at or t.now)
    if step.set_weight is not None:
        target = Weights.of_canary(step.set_weight)
        if target == CANARY_ONLY and t.state.weights.canary > 0 and not _may_promote(t):
            return False  # all traffic to the canary is a promotion: never on missing data
        if t.failed_now and target.canary > t.state.weights.canary:
            return False  # never raise the canary in the interval a check failed
        if t.state.weights != target:
            t.move(target, WeightPurpose.STEP, f"step {t.state.step + 1}: setWeight {step.set_weight}")
            t.set(
                step_started_at=t.now,
                phase=Phase.PROGRESSING,
                message=f"step {t.state.step + 1}: canary at {step.set_weight}%",
            )
            t.notify(f"step-{t.state.step}", "rollout.step", Level.INFO, t.state.message)
            t.say(t.state.message)
            return False
        return _weight_step_passed(t, elapsed)
    if step.pause is not None:
        duration = step.pause.duration
        if duration is not None and elapsed >= duration:
            return True
        until = f"until {(t.state.step_started_at or t.now) + duration:%H:%M:%S}" if duration else "until resumed"
        t.set(phase=Phase.PAUSED, pause_reason=PAUSE_STEP, message=f"step {t.state.step + 1}: paused {until}")
        t.say(t.state.message)
        return False
    return _approval_granted(t)


def _weight_step_passed(t: Tick, elapsed: timedelta) -> bool:
    verdict = t.state.verdict
    judged_here = t.state.last_judged_at is not None and t.state.last_judged_at > (t.state.step_started_at or t.now)
    passed = verdict is not None and verdict.kind is VerdictKind.PASS and judged_here
    long_enough = elapsed >= t.spec.analysis.effective_step_duration
    if passed and verdict is not None and (long_enough or verdict.conclusive):
        t.say(f"step {t.state.step + 1} passed after {fmt(elapsed)}")
        return True
    if t.state.weights.canary == 0:
        return long_enough  # nothing to judge at 0%: the step is a wait
    if elapsed >= t.spec.progress_deadline:
        why = verdict.summary if verdict else "no verdict yet"
        t.set(
            phase=Phase.PAUSED,
            pause_reason=f"progress deadline: step {t.state.step + 1} had no passing "
            f"verdict within {fmt(t.spec.progress_deadline)}",
            message=f"paused: no passing verdict within progressDeadline {fmt(t.spec.progress_deadline)}; last: {why}",
        )
        t.notify(f"deadline-{t.state.step}", "rollout.deadline", Level.WARNING, t.state.message)
        t.say(t.state.message)
        return False
    if not t.holding:
        t.set(
            message=f"step {t.state.step + 1}: canary at {t.state.weights.canary}%, "
            f"{'judging' if verdict is None else verdict.kind.value}: "
            f"{verdict.summary if verdict else 'waiting for the first interval'}"
        )
    return False


def _approval_granted(t: Tick) -> bool:
    if t.state.approved_by:
        t.say(f"approved by {t.state.approved_by}")
        return True
    approvals = t.spec.approvals
    requested = t.state.approval_requested_at
    if requested is None:
        requested = t.now
        step = t.spec.steps[t.state.step]
        text = (
            step.approval.message
            if step.approval and step.approval.message
            else f"approve step {t.state.step + 1} of {t.policy.key}? canary {t.spec.canary} at "
            f"{t.state.weights.canary}%"
        )
        t.actions.append(
            RequestApproval(
                key=approval_key(t.state),
                step=t.state.step,
                message=text,
                approvers=tuple(approvals.slack.approvers) if approvals.slack else (),
                channel=approvals.slack.channel if approvals.slack else None,
            )
        )
    t.set(
        phase=Phase.AWAITING_APPROVAL,
        approval_requested_at=requested,
        message=f"step {t.state.step + 1}: waiting for approval (times out at "
        f"{requested + approvals.timeout:%H:%M:%S})",
    )
    if t.now - requested >= approvals.timeout:
        if approvals.on_timeout is TimeoutAction.ROLLBACK:
            rollback(t, f"approval timed out after {fmt(approvals.timeout)}")
        else:
            t.set(
                phase=Phase.PAUSED,
                pause_reason=f"approval timed out after {fmt(approvals.timeout)}",
                message=f"paused: approval timed out after {fmt(approvals.timeout)}; approve to go on",
            )
            t.notify(f"approval-timeout-{t.state.step}", "rollout.approval-timeout", Level.WARNING, t.state.message)
    t.say(t.state.message)
    return False


def _may_promote(t: Tick) -> bool:
    verdict = t.state.verdict
    if verdict is not None and verdict.kind is VerdictKind.PASS and verdict.enough_data:
        return True
    t.set(
        phase=Phase.PROGRESSING,
        message="all steps done; holding until a judgement passes with enough data: "
        + (verdict.summary if verdict else "no verdict yet"),
    )
    t.say(t.state.message)
    return False


def _finish_promotion(t: Tick) -> None:
    if t.state.weights != CANARY_ONLY:
        if t.failed_now:
            return  # never raise the canary in the interval a check failed
        t.move(CANARY_ONLY, WeightPurpose.PROMOTE, "promote: canary to 100%")
        t.say("promoting: canary to 100%")
        return
    t.set(
        phase=Phase.PROMOTED,
        message=f"promoted {t.spec.canary}",
        end_reason=t.state.end_reason or "every step passed",
    )
    t.notify(
        "promoted",
        "rollout.promoted",
        Level.SUCCESS,
        f"{t.policy.key}: {t.spec.canary} promoted ({t.state.end_reason})",
    )


def _finish_rollback(t: Tick) -> None:
    if t.obs.weights != STABLE_ONLY or t.state.weights != STABLE_ONLY:
        t.move(STABLE_ONLY, WeightPurpose.ROLLBACK, f"rollback: {t.state.end_reason}", check=False)
        t.say(f"rolling back to {STABLE_ONLY}")
        return
    aborted = bool(t.state.aborted_by)
    phase = Phase.ABORTED if aborted else Phase.ROLLED_BACK
    stable = t.state.stable_backend or t.spec.stable
    t.set(phase=phase, message=f"{phase.value}: stable {stable} at 100%: {t.state.end_reason}")
    t.notify(
        "ended",
        "rollout.aborted" if aborted else "rollout.rolled-back",
        Level.FAILURE,
        f"{t.policy.key}: {t.state.message}",
    )


def next_tick(t: Tick) -> datetime:
    at = t.now + t.spec.analysis.interval
    started = t.state.step_started_at or t.now
    if t.state.step < len(t.spec.steps):
        step = t.spec.steps[t.state.step]
        if step.pause is not None and step.pause.duration is not None:
            at = min(at, max(t.now, started + step.pause.duration))
    if t.state.approval_requested_at is not None and t.state.phase is Phase.AWAITING_APPROVAL:
        at = min(at, max(t.now, t.state.approval_requested_at + t.spec.approvals.timeout))
    return at
