"""The decision engine: ``decide(policy, state, observations, now) -> Decision``.

Owns every state transition of a rollout (phases in ``states.Phase``) and the order of one tick:
a new revision starts a new run -> operator commands (``commanding``) -> the route as observed
(``observing``: our write landed, did not, or someone else moved it) -> what is new in the metrics
(``evaluating``: each interval judged once) -> the steps (``stepping``) -> when to tick next.
Pure and deterministic: no I/O, no clock, no globals; replaying the same inputs gives the same
decision. It never writes anything itself; the runtime persists ``Decision.state`` and then
executes ``Decision.actions`` in order.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rollout.core.actions import (
    Action,
    ApprovalResolved,
    Level,
    Resolution,
    ScheduleNext,
    SetMatch,
    SetWeights,
    WeightPurpose,
)
from rollout.core.commanding import apply_commands, approval_key
from rollout.core.evaluating import evaluate
from rollout.core.judging import JudgeMemory
from rollout.core.observing import RouteView, observe_route, reapply
from rollout.core.states import (
    STABLE_ONLY,
    CommandKind,
    CommandResult,
    Observations,
    Phase,
    RolloutState,
)
from rollout.core.stepping import advance, check_deadline, finish_rollback, next_tick
from rollout.core.ticking import Decision, Tick, rollback
from rollout.core.verdicts import VerdictKind
from rollout.policy.models import Rollout


def decide(policy: Rollout, state: RolloutState, obs: Observations, now: datetime) -> Decision:
    """Decide what to do for ``policy`` given its persisted ``state``, this tick's ``obs`` and ``now``."""
    t = Tick(policy, state, obs, now)
    _revision(t)
    apply_commands(t, obs.commands)
    if t.state.phase is Phase.PENDING:
        _start(t)
    if t.state.phase.active:
        view = observe_route(t)
        verdict = evaluate(t)
        failed_now = verdict is not None and verdict.kind is VerdictKind.FAIL
        if t.state.phase is Phase.ROLLING_BACK:
            finish_rollback(t)
        elif view is RouteView.IN_ORDER:
            advance(t, failed_now=failed_now)
        else:
            if view is RouteView.NOT_LANDED:
                reapply(t, failed_now=failed_now)
            check_deadline(t)
    if t.state.phase.final:
        t.say(f"{t.state.phase.value}: {t.state.end_reason or t.state.message}".rstrip(": "))
    elif t.state.phase.active or t.state.phase is Phase.PENDING:
        t.actions.append(ScheduleNext(at=next_tick(t)))
    resolved = _approval_resolved(state, t.state, timed_out=t.approval_timed_out)
    if resolved is not None:
        t.actions.append(resolved)
    reason = "; ".join(dict.fromkeys(t.reasons)) or t.state.message
    return Decision(state=t.state, actions=tuple(t.actions), reason=reason, commands=tuple(t.results))


def _approval_resolved(before: RolloutState, after: RolloutState, *, timed_out: bool) -> ApprovalResolved | None:
    """The approval request that was pending before this tick and is not any more, with how it ended."""
    if before.approval_requested_at is None or before.phase is not Phase.AWAITING_APPROVAL:
        return None
    same = (
        after.revision == before.revision
        and after.step == before.step
        and after.approval_requested_at == before.approval_requested_at
        and after.phase is Phase.AWAITING_APPROVAL
    )
    if same:
        return None
    key, number = approval_key(before), before.number
    approved = after.approvals[len(before.approvals) :] if len(after.approvals) > len(before.approvals) else ()
    if approved:
        return ApprovalResolved(key, number, Resolution.APPROVED, by=approved[-1].split(": ", 1)[-1])
    if timed_out and after.phase is Phase.PAUSED:
        return ApprovalResolved(key, number, Resolution.TIMED_OUT, detail="paused")
    if timed_out and after.phase is Phase.ROLLING_BACK:
        return ApprovalResolved(key, number, Resolution.TIMED_OUT, detail="rolled back")
    if after.aborted_by and not before.aborted_by:
        return ApprovalResolved(key, number, Resolution.REJECTED, by=after.aborted_by, detail=after.end_reason)
    return ApprovalResolved(key, number, Resolution.CLOSED, detail=after.message)


def _revision(t: Tick) -> None:
    policy = t.policy
    if t.state.revision == policy.revision:
        return
    if not t.state.phase.active:
        _new_run(t, superseded=False)
    elif t.state.phase is not Phase.ROLLING_BACK:
        pair = (t.state.stable_backend, t.state.canary_backend)
        if pair in (("", ""), (policy.spec.stable, policy.spec.canary)):
            _new_run(t, superseded=True)
        else:  # the old pair's traffic must go home first; the new run starts once stable has 100%
            rollback(
                t,
                f"superseded by revision {policy.revision}, which names other backends: "
                f"restoring {t.state.stable_backend} to 100% before starting it",
            )


def _new_run(t: Tick, *, superseded: bool) -> None:
    old = t.state
    if superseded:
        t.notify(
            f"superseded-{old.revision}",
            "rollout.superseded",
            Level.WARNING,
            f"spec changed during the run of revision {old.revision}; starting revision "
            f"{t.policy.revision} from its first step",
        )
    live = t.obs.route or old.observed
    t.state = RolloutState(
        phase=Phase.PENDING,
        revision=t.policy.revision,
        desired=live or old.desired,
        observed=live,
        # a managed route the old run left (superseded mid-A/B) is the new run's to keep or remove
        match=old.match,
        match_observed=old.match_observed,
        match_pending=old.match_pending,
        handled_commands=old.handled_commands,
    )
    t.say(f"new revision {t.policy.revision}")


def _start(t: Tick) -> None:
    if not t.obs.may_start:
        t.set_message("waiting: the cap on concurrent rollouts is reached")
        t.say(t.state.message)
        return
    live = t.obs.route
    if live is None:
        why = t.obs.route_problem.message if t.obs.route_problem else "unknown error"
        t.set_message(f"waiting: cannot read the route: {why}")
        t.say(t.state.message)
        return
    spec = t.spec
    t.state = replace(
        t.state,
        phase=Phase.PROGRESSING,
        stable_backend=spec.stable,
        canary_backend=spec.canary,
        router=spec.router,
        route_namespace=t.policy.route_namespace(),
        step=0,
        run_started_at=t.now,
        step_started_at=t.now,
        desired=live,
        observed=live,
        pending=None,
        match=t.obs.match,  # one that exists (a superseded run's) is removed by the first step that has none
        match_observed=t.obs.match,
        match_pending=None,
        weight_since=None,
        judge=JudgeMemory(),
        baseline=None,
        verdict=None,
        verdict_step=-1,
        judged_at=None,
        promotable=False,
        notified=(),
        message="started",
    )
    t.notify(
        "started",
        "rollout.started",
        Level.INFO,
        f"rollout of {spec.canary} (revision {t.policy.revision}) started; {len(spec.steps)} steps, traffic now {live}",
    )
    t.say("run started")


def hold(state: RolloutState, obs: Observations, now: datetime, why: str) -> Decision:
    """The decision when the policy cannot be used (an invalid spec, or ``decide`` itself failed).

    Nothing moves forward: the route is observed (status stays truthful) and only an ``abort`` is
    acted on, removing an A/B step's managed route and rolling the run's own two backends back to
    stable 100% (the runtime builds the router from ``state.router`` and the run's backends).
    Every other command is ignored with ``why``.
    """
    del now
    seen = obs.route is not None
    s = replace(state, observed=obs.route or state.observed, match_observed=obs.match if seen else state.match_observed)
    results: list[CommandResult] = []
    actions: list[Action] = []
    for cmd in obs.commands:
        if cmd.id in s.handled_commands:
            continue
        if cmd.kind is CommandKind.ABORT and s.phase.active and s.phase is not Phase.ROLLING_BACK:
            s = replace(s, phase=Phase.ROLLING_BACK, aborted_by=cmd.by, end_reason=f"aborted by {cmd.by}: {why}")
            results.append(CommandResult(cmd.id, accepted=True, message=f"abort by {cmd.by}"))
        else:
            results.append(
                CommandResult(cmd.id, accepted=False, message=f"ignored {cmd.kind.value} by {cmd.by}: {why}")
            )
        s = replace(s, handled_commands=(*s.handled_commands, cmd.id)[-200:])
    if s.phase is Phase.ROLLING_BACK:
        if s.match_observed is not None:  # an A/B step's managed route goes first
            actions.append(SetMatch(None, s.match_observed, False, WeightPurpose.ROLLBACK, f"rollback: {s.end_reason}"))
            s = replace(s, match=None)
        if s.observed == STABLE_ONLY and s.match_observed is None:
            phase = Phase.ABORTED if s.aborted_by else Phase.ROLLED_BACK
            s = replace(
                s,
                phase=phase,
                desired=STABLE_ONLY,
                pending=None,
                match=None,
                match_pending=None,
                message=f"{phase.value}: {s.end_reason}",
            )
        elif s.observed != STABLE_ONLY:
            actions.append(SetWeights(STABLE_ONLY, None, WeightPurpose.ROLLBACK, f"rollback: {s.end_reason}"))
            s = replace(s, desired=STABLE_ONLY)
    elif s.phase.active:
        s = replace(s, message=f"holding: {why}")
    return Decision(state=s, actions=tuple(actions), reason=f"holding: {why}", commands=tuple(results))


__all__ = ["Decision", "decide", "hold"]
