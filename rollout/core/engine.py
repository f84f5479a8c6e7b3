"""The decision engine: ``decide(policy, state, observations, now) -> Decision``.

Owns every state transition of a rollout (phases in ``states.Phase``) and the actions that go with
it. Pure and deterministic: no I/O, no clock, no globals; replaying the same inputs gives the same
decision. It never writes anything itself; the runtime persists ``Decision.state`` and then
executes ``Decision.actions`` in order.

One tick, in order: operator commands -> new revision -> route weights (re-apply a write of ours
that did not land, or detect drift) -> judge the interval -> advance through as many steps as are
satisfied -> schedule the next tick.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rollout.core.actions import (
    Action,
    Level,
    Notify,
    RequestApproval,
    ScheduleNext,
    SetWeights,
    WeightPurpose,
)
from rollout.core.commanding import PAUSE_STEP, apply_commands, approval_key
from rollout.core.judging import judge
from rollout.core.states import (
    CANARY_ONLY,
    STABLE_ONLY,
    JudgeMemory,
    Observations,
    Outcome,
    Phase,
    RolloutState,
    VerdictKind,
    Weights,
)
from rollout.policy.models import Rollout, TimeoutAction, UnavailableAction

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


class _Tick:
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


def decide(policy: Rollout, state: RolloutState, obs: Observations, now: datetime) -> Decision:
    """Decide what to do for ``policy`` given its persisted ``state``, this tick's ``obs`` and ``now``."""
    t = _Tick(policy, state, obs, now)
    apply_commands(t.policy, t, obs.commands)
    if t.state.revision != policy.revision and not t.state.phase.active:
        _new_run(t, superseded=False)
    elif t.state.revision != policy.revision and t.state.phase is not Phase.ROLLING_BACK:
        if _same_backends(t.state, policy):
            _new_run(t, superseded=True)
        else:  # the old pair's traffic must go home first; the new run starts once stable has 100%
            _rollback(
                t,
                f"superseded by revision {policy.revision}, which names other backends: "
                f"restoring {t.state.stable_backend} to 100% before starting it",
            )

    if t.state.phase is Phase.PENDING:
        _start(t)
    if t.state.phase.active and _weights_in_order(t):
        if t.state.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL):
            _judge(t)
        _advance(t)
    if t.state.phase.final:
        t.say(f"{t.state.phase.value}: {t.state.end_reason or t.state.message}".rstrip(": "))
    else:
        t.actions.append(ScheduleNext(at=_next_tick(t)))
    t.set(updated_at=now)
    return Decision(state=t.state, actions=tuple(t.actions), reason="; ".join(t.reasons) or t.state.message)


# --- runs -------------------------------------------------------------------------------------


def _same_backends(state: RolloutState, policy: Rollout) -> bool:
    mine = (state.stable_backend, state.canary_backend)
    return mine in (("", ""), (policy.spec.stable, policy.spec.canary))


def _new_run(t: _Tick, *, superseded: bool) -> None:
    old = t.state
    if superseded:
        t.notify(
            f"superseded-{old.revision}",
            "rollout.superseded",
            Level.WARNING,
            f"spec changed during the run of revision {old.revision}; starting revision "
            f"{t.policy.revision} from its first step",
        )
    live = t.obs.weights or old.weights
    t.state = RolloutState(
        phase=Phase.PENDING,
        revision=t.policy.revision,
        weights=live,
        prior_weights=live,
        handled_commands=old.handled_commands,
    )
    t.say(f"new revision {t.policy.revision}")


def _start(t: _Tick) -> None:
    if not t.obs.may_start:
        t.set(message="waiting: the cap on concurrent rollouts is reached")
        t.say(t.state.message)
        return
    if t.obs.weights is None:
        t.set(message=f"waiting: cannot read the route: {t.obs.weights_error or 'unknown error'}")
        t.say(t.state.message)
        return
    t.set(
        phase=Phase.PROGRESSING,
        stable_backend=t.spec.stable,
        canary_backend=t.spec.canary,
        step=0,
        run_started_at=t.now,
        step_started_at=t.now,
        weights=t.obs.weights,
        prior_weights=t.obs.weights,
        message="started",
    )
    t.notify(
        "started",
        "rollout.started",
        Level.INFO,
        f"rollout of {t.spec.canary} (revision {t.policy.revision}) started; "
        f"{len(t.spec.steps)} steps, traffic now {t.obs.weights}",
    )
    t.say("run started")


# --- weights: our write, someone else's write, or unreadable ------------------------------------


def _weights_in_order(t: _Tick) -> bool:
    """True when the live weights are what we last decided and the run may go on this tick."""
    live, mine = t.obs.weights, t.state.weights
    if live is None:
        t.set(message=f"holding: cannot read the route: {t.obs.weights_error or 'unknown error'}")
        t.say(t.state.message)
        return False
    if live == mine:
        return True
    if t.state.phase is Phase.ROLLING_BACK:
        return True  # rollback writes unconditionally below
    if live == t.state.prior_weights:
        t.actions.append(
            SetWeights(
                target=mine,
                expected=live,
                purpose=WeightPurpose.REAPPLY,
                reason=f"our write of {mine} did not land; writing it again",
            )
        )
        t.say(f"re-applying {mine}")
        return False
    if t.state.phase is not Phase.PAUSED or not t.state.pause_reason.startswith("drift"):
        t.set(
            phase=Phase.PAUSED,
            pause_reason=f"drift: route carries {live}, rollout set {mine}",
            message=f"paused: someone changed the weights to {live} (rollout set {mine}); "
            "`rollout resume` restores rollout's weights, `rollout abort` rolls back",
        )
    t.notify(f"drift-{t.state.step}-{live.canary}", "rollout.drift", Level.WARNING, t.state.message)
    t.say(t.state.message)
    return False


# --- judging ----------------------------------------------------------------------------------


def _judge(t: _Tick) -> None:
    sample = t.obs.metrics
    if sample is None or t.state.weights.canary == 0:
        return
    analysis = t.spec.analysis
    if sample.outcome is Outcome.UNAVAILABLE:
        t.holding = True
        since = t.state.unavailable_since or t.now
        t.set(
            unavailable_since=since,
            message=f"holding: metrics unavailable since {since.isoformat()}: {sample.detail}",
        )
        t.say(t.state.message)
        policy = analysis.unavailable
        if policy.action is UnavailableAction.ROLLBACK and t.now - since >= policy.after:
            _rollback(
                t,
                f"metrics unavailable for {_fmt(t.now - since)} (unavailable.after is {_fmt(policy.after)})",
            )
        return
    t.set(unavailable_since=None)
    verdict, memory = judge(analysis, t.state.memory, sample, t.state.weights.canary / 100.0)
    t.set(verdict=verdict, memory=memory, last_judged_at=t.now)
    t.say(f"verdict {verdict.kind.value}: {verdict.summary}")
    if sample.outcome is Outcome.QUERY_ERROR:
        t.holding = True
        t.set(message=f"holding: a metric query is broken: {sample.detail}")
    if verdict.kind is VerdictKind.FAIL:
        t.failed_now = True
        failures = t.state.failures + 1
        t.set(failures=failures, message=f"failed check {failures}/{analysis.failure_limit}: {verdict.summary}")
        t.notify(f"failure-{failures}", "rollout.check-failed", Level.WARNING, t.state.message)
        if verdict.conclusive:  # a sequential test crossed its boundary: the evidence is final
            alpha = analysis.sequential.alpha
            _rollback(
                t,
                f"the sequential test found the canary worse than allowed (false-rollback risk <= {alpha:g})",
                verdict.summary,
            )
        elif failures >= analysis.failure_limit:
            _rollback(t, f"{failures} failed checks (failureLimit {analysis.failure_limit})", verdict.summary)


def _rollback(t: _Tick, reason: str, detail: str = "") -> None:
    t.set(
        phase=Phase.ROLLING_BACK,
        end_reason=f"{reason}; last: {detail}" if detail else reason,
        message=f"rolling back: {reason}",
    )
    t.say(t.state.message)


# --- steps ------------------------------------------------------------------------------------


def _advance(t: _Tick) -> None:
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


def _next_step(t: _Tick) -> None:
    t.set(
        step=t.state.step + 1,
        step_started_at=t.now,
        phase=Phase.PROGRESSING,
        pause_reason="",
        approved_by="",
        approval_requested_at=None,
    )


def _step_done(t: _Tick) -> bool:
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


def _weight_step_passed(t: _Tick, elapsed: timedelta) -> bool:
    verdict = t.state.verdict
    judged_here = t.state.last_judged_at is not None and t.state.last_judged_at > (t.state.step_started_at or t.now)
    passed = verdict is not None and verdict.kind is VerdictKind.PASS and judged_here
    long_enough = elapsed >= t.spec.analysis.effective_step_duration
    if passed and verdict is not None and (long_enough or verdict.conclusive):
        t.say(f"step {t.state.step + 1} passed after {_fmt(elapsed)}")
        return True
    if t.state.weights.canary == 0:
        return long_enough  # nothing to judge at 0%: the step is a wait
    if elapsed >= t.spec.progress_deadline:
        why = verdict.summary if verdict else "no verdict yet"
        t.set(
            phase=Phase.PAUSED,
            pause_reason=f"progress deadline: step {t.state.step + 1} had no passing "
            f"verdict within {_fmt(t.spec.progress_deadline)}",
            message=f"paused: no passing verdict within progressDeadline {_fmt(t.spec.progress_deadline)}; last: {why}",
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


def _approval_granted(t: _Tick) -> bool:
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
            _rollback(t, f"approval timed out after {_fmt(approvals.timeout)}")
        else:
            t.set(
                phase=Phase.PAUSED,
                pause_reason=f"approval timed out after {_fmt(approvals.timeout)}",
                message=f"paused: approval timed out after {_fmt(approvals.timeout)}; approve to go on",
            )
            t.notify(f"approval-timeout-{t.state.step}", "rollout.approval-timeout", Level.WARNING, t.state.message)
    t.say(t.state.message)
    return False


def _may_promote(t: _Tick) -> bool:
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


def _finish_promotion(t: _Tick) -> None:
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


def _finish_rollback(t: _Tick) -> None:
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


def _next_tick(t: _Tick) -> datetime:
    at = t.now + t.spec.analysis.interval
    started = t.state.step_started_at or t.now
    if t.state.step < len(t.spec.steps):
        step = t.spec.steps[t.state.step]
        if step.pause is not None and step.pause.duration is not None:
            at = min(at, max(t.now, started + step.pause.duration))
    if t.state.approval_requested_at is not None and t.state.phase is Phase.AWAITING_APPROVAL:
        at = min(at, max(t.now, t.state.approval_requested_at + t.spec.approvals.timeout))
    return at


def _fmt(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


__all__ = ["PAUSE_STEP", "Decision", "JudgeMemory", "decide"]
