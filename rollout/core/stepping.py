"""Steps of a run: setWeight and match, pause and approval gates, promotion, rollback, the next tick.

Owns the one definition of step semantics that ``plan``, ``simulate``, the README and the CRD
describe: a ``setWeight`` step first writes its weight; it passes only after the route has been
*seen* carrying that weight for at least ``stepDuration`` and the judge has a passing verdict on
data taken at that weight (``evaluating``). A ``match`` step (A/B) is the same with a managed
route sending the requests that match to the canary (plus its weight of the rest): the route
must be seen carrying both. The managed route stays through the pause and approval steps that
follow; the next setWeight step, promotion, rollback and abort remove it, always before any
weight moves, and a run ends only once it is seen gone. Evidence that the canary is worse acts
at any time; evidence that it is fine never ends a step before its minimum. A pause step waits
its duration (or a person), an approval step waits for an approval, and every step is judged
while it lasts. No promotion without a passing verdict with enough data at the last weight.
Also owns when the engine next needs a tick (pause ends, step minimums, approval timeouts,
deadlines). Pure.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rollout.core.actions import Level, RequestApproval, WeightPurpose
from rollout.core.commanding import approval_key
from rollout.core.matches import RouteMatch, route_match
from rollout.core.states import CANARY_ONLY, STABLE_ONLY, PauseReason, Phase, Weights
from rollout.core.ticking import Tick, fmt, rollback
from rollout.core.verdicts import Verdict, VerdictKind
from rollout.policy.models import TimeoutAction, UnavailableAction


def advance(t: Tick, *, failed_now: bool = False) -> None:
    """Walk through every step that is satisfied now; stop at the first that is not.

    ``failed_now``: a check failed on this tick; then no weight goes up on it, whatever asks.
    """
    for _ in range(len(t.spec.steps) + 2):
        phase = t.state.phase
        if phase is Phase.ROLLING_BACK:
            finish_rollback(t)
            return
        if phase is Phase.PROMOTING:
            if failed_now and t.state.desired != CANARY_ONLY:
                t.say("not promoting on a tick whose check failed")
                return
            _finish_promotion(t)
            return
        if phase is Phase.PAUSED and t.state.pause_reason is not PauseReason.STEP:
            t.say(f"paused: {t.state.pause_detail or t.state.message}")
            return
        if t.state.step >= len(t.spec.steps):
            if not _may_promote(t):
                return
            t.state = replace(t.state, phase=Phase.PROMOTING, message="all steps passed; promoting")
            continue
        if not _step_done(t, failed_now=failed_now):
            return
        _next_step(t)


def check_deadline(t: Tick) -> None:
    """The progress deadline, for ticks on which the run cannot advance (route unreadable...)."""
    started = t.state.step_started_at
    if t.state.phase is not Phase.PROGRESSING or started is None:
        return
    if t.now - started >= t.spec.progress_deadline:
        _deadline(t, t.state.message or "the route could not be read")


def current_verdict(t: Tick) -> Verdict | None:
    """The verdict given at the current step, if any."""
    return t.state.verdict if t.state.verdict_step == t.state.step else None


def _count(t: Tick) -> str:
    return f"step {t.state.number}/{len(t.spec.steps)}"


def route_target(t: Tick, index: int) -> tuple[Weights, RouteMatch | None] | None:
    """What the route carries during step ``index``: a setWeight or match step's weights and
    managed route; None for pause and approval steps (the route stays as it is)."""
    step = t.spec.steps[index]
    if step.set_weight is not None:
        return Weights.of_canary(step.set_weight), None
    if step.match is not None:
        return Weights.of_canary(t.spec.plan_weight(index)), route_match(step.match)
    return None


def carried(t: Tick) -> str:
    """What the canary gets now, as people read it ("10%", "requests with X=beta (and 10% of the rest)")."""
    match, weight = t.state.match, t.state.desired.canary
    if match is None:
        return f"{weight}%"
    return f"requests with {match}" + (f" and {weight}% of the rest" if weight else "")


def _next_step(t: Tick) -> None:
    following = t.state.step + 1
    target = route_target(t, following) if following < len(t.spec.steps) else None
    keep_clock = following < len(t.spec.steps) and target is None
    same_route = target is not None and target == (t.state.desired, t.state.match)
    t.state = replace(
        t.state,
        step=following,
        step_started_at=t.now,
        weight_since=t.state.weight_since if keep_clock else (t.now if same_route else None),
        phase=Phase.PROGRESSING,
        pause_reason=None,
        pause_detail="",
        approved_by="",
        approval_requested_at=None,
    )


def _step_done(t: Tick, *, failed_now: bool) -> bool:
    step = t.spec.steps[t.state.step]
    target = route_target(t, t.state.step)
    if target is not None:
        return _route_step_done(t, *target, failed_now=failed_now)
    if step.pause is not None:
        duration = step.pause.duration
        started = t.state.step_started_at or t.now
        if duration is not None and t.now - started >= duration:
            t.say(f"{_count(t)}: pause of {fmt(duration)} over")
            return True
        until = f"until {started + duration:%H:%M:%S}" if duration is not None else "until `rollout resume`"
        t.pause(PauseReason.STEP, until, f"{_count(t)}: paused {until}")
        t.say(t.state.message)
        return False
    return _approval_granted(t)


def _route_step_done(t: Tick, target: Weights, match: RouteMatch | None, *, failed_now: bool) -> bool:
    if t.state.match != match:  # the managed route changes first, weights after it is seen
        if failed_now and match is not None:
            return False  # never send the canary more traffic on a tick whose check failed
        what = f"requests with {match} to the canary" if match is not None else "managed route removed"
        t.set_match(match, WeightPurpose.STEP, f"{_count(t)}: {what}")
        t.state = replace(t.state, weight_since=None, phase=Phase.PROGRESSING, message=f"{_count(t)}: {what}")
        t.notify(f"step-{t.state.step}", "rollout.step", Level.INFO, t.state.message)
        t.say(t.state.message)
        return False
    weight = target.canary
    if t.state.desired != target:
        if failed_now and target.canary > t.state.desired.canary:
            return False  # never raise the canary on a tick whose check failed
        if target == CANARY_ONLY and t.state.desired.canary > 0 and not _may_promote(t):
            return False  # all traffic to the canary is a promotion: never on missing data
        what = f"setWeight {weight}" if match is None else f"{weight}% of the requests that do not match"
        t.move(target, WeightPurpose.STEP, f"{_count(t)}: {what}")
        t.state = replace(
            t.state, weight_since=None, phase=Phase.PROGRESSING, message=f"{_count(t)}: canary to {carried(t)}"
        )
        t.notify(f"step-{t.state.step}", "rollout.step", Level.INFO, t.state.message)
        t.say(t.state.message)
        return False
    since = t.state.weight_since
    if since is None:
        return False  # written, not yet seen on the route
    at_weight, minimum = t.now - since, t.spec.analysis.effective_step_duration
    verdict = current_verdict(t)
    if weight == 0 and match is None:
        if at_weight >= minimum:
            return True
        t.set_message(f"{_count(t)}: canary at 0% since {since:%H:%M:%S}, waiting {fmt(minimum)} (nothing to judge)")
        return False
    if verdict is not None and verdict.kind is VerdictKind.PASS and at_weight >= minimum:
        t.state = replace(t.state, promotable=verdict.enough_data)
        t.say(f"{_count(t)} passed after {fmt(at_weight)} at {carried(t)}")
        t.notify(
            f"passed-{t.state.step}",
            "rollout.step-passed",
            Level.INFO,
            f"{_count(t)} passed at {carried(t)}: {verdict.summary}",
        )
        return True
    started = t.state.step_started_at or t.now
    if t.now - started >= t.spec.progress_deadline:
        _deadline(t, verdict.summary if verdict else "no verdict yet")
        return False
    judged = _headline(verdict) if verdict else "waiting for the first interval at this weight"
    if t.state.phase is Phase.PROGRESSING and not t.state.message.startswith("holding"):
        t.set_message(
            f"{_count(t)}: canary gets {carried(t)} since {since:%H:%M:%S} (at least {fmt(minimum)}); {judged}"
        )
    return False


def _headline(verdict: Verdict) -> str:
    """The verdict's decision sentence without its numbers (they change every tick; status.verdict has them)."""
    head = verdict.summary.split(" | ", 1)[0].split(";", 1)[0].strip()
    return head or f"judge says {verdict.kind.value}"


def _deadline(t: Tick, last: str) -> None:
    deadline = fmt(t.spec.progress_deadline)
    t.pause(
        PauseReason.DEADLINE,
        f"{_count(t)} had no passing verdict within progressDeadline {deadline}",
        f"paused: {_count(t)} had no passing verdict within progressDeadline {deadline}; last: {last}",
    )
    t.notify(f"deadline-{t.state.step}", "rollout.deadline", Level.WARNING, t.state.message)
    t.say(t.state.message)


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
            else f"approve {_count(t)} of {t.policy.key}? canary {t.spec.canary} gets {carried(t)}"
        )
        t.actions.append(
            RequestApproval(
                key=approval_key(t.state),
                number=t.state.number,
                message=text,
                approvers=tuple(approvals.slack.approvers) if approvals.slack else (),
                channel=approvals.slack.channel if approvals.slack else None,
            )
        )
    timeout_at = requested + approvals.timeout
    t.state = replace(
        t.state,
        phase=Phase.AWAITING_APPROVAL,
        approval_requested_at=requested,
        message=f"{_count(t)}: waiting for approval (times out at {timeout_at:%H:%M:%S})",
    )
    if t.now >= timeout_at:
        t.approval_timed_out = True
        if approvals.on_timeout is TimeoutAction.ROLLBACK:
            rollback(t, f"approval timed out after {fmt(approvals.timeout)}")
        else:
            t.pause(
                PauseReason.APPROVAL_TIMEOUT,
                f"approval of {_count(t)} timed out after {fmt(approvals.timeout)}",
                f"paused: approval timed out after {fmt(approvals.timeout)}; `rollout approve` to go on",
            )
            t.notify(f"approval-timeout-{t.state.step}", "rollout.approval-timeout", Level.WARNING, t.state.message)
    t.say(t.state.message)
    return False


def _may_promote(t: Tick) -> bool:
    verdict = t.state.verdict
    if t.state.promotable or (verdict is not None and verdict.kind is VerdictKind.PASS and verdict.enough_data):
        return True
    t.state = replace(
        t.state,
        phase=Phase.PROGRESSING,
        message="holding before promotion until a judgement passes with enough data: "
        + (verdict.summary if verdict else "no verdict yet"),
    )
    t.say(t.state.message)
    return False


def _finish_promotion(t: Tick) -> None:
    if t.state.match is not None:
        t.set_match(None, WeightPurpose.PROMOTE, "promote: the managed route goes first")
        t.say("promoting: removing the managed route first")
        return
    if t.state.match_observed is not None:
        return  # its removal is not seen yet
    if t.state.desired != CANARY_ONLY or t.state.observed != CANARY_ONLY:
        if t.state.desired != CANARY_ONLY:
            t.move(CANARY_ONLY, WeightPurpose.PROMOTE, "promote: canary to 100%")
            t.say("promoting: canary to 100%")
        return
    t.state = replace(
        t.state,
        phase=Phase.PROMOTED,
        message=f"promoted {t.state.canary_backend or t.spec.canary}",
        end_reason=t.state.end_reason or "every step passed",
    )
    t.notify(
        "promoted",
        "rollout.promoted",
        Level.SUCCESS,
        f"{t.policy.key}: {t.state.canary_backend or t.spec.canary} promoted ({t.state.end_reason})",
    )


def finish_rollback(t: Tick) -> None:
    """The managed route removed, then stable to 100%, unconditionally and as often as needed (both
    on one tick: removal first); RolledBack (or Aborted) once the route is seen with neither."""
    if t.state.match_observed is not None:
        t.set_match(None, WeightPurpose.ROLLBACK, f"rollback: {t.state.end_reason}", check=False)
        t.say("rolling back: removing the managed route")
    elif t.state.match is not None or t.state.match_pending is not None:
        t.state = replace(t.state, match=None, match_pending=None)  # seen gone: nothing to remove
    if t.state.observed != STABLE_ONLY:
        t.move(STABLE_ONLY, WeightPurpose.ROLLBACK, f"rollback: {t.state.end_reason}", check=False)
        t.say(f"rolling back to {STABLE_ONLY}")
        return
    if t.state.match_observed is not None:
        return
    aborted = bool(t.state.aborted_by)
    phase = Phase.ABORTED if aborted else Phase.ROLLED_BACK
    stable = t.state.stable_backend or t.spec.stable
    t.state = replace(
        t.state,
        phase=phase,
        desired=STABLE_ONLY,
        pending=None,
        message=f"{phase.value}: stable {stable} at 100%: {t.state.end_reason}",
    )
    t.notify(
        "ended",
        "rollout.aborted" if aborted else "rollout.rolled-back",
        Level.FAILURE,
        f"{t.policy.key}: {t.state.message}",
    )


def next_tick(t: Tick) -> datetime:
    """When the engine next needs a tick: the next analysis interval or an earlier timer."""
    s, now = t.state, t.now
    if s.pending is not None or s.match_pending is not None:
        return now  # see our write land as soon as possible
    candidates = [now + t.spec.analysis.interval]
    started = s.step_started_at or now
    if s.step < len(t.spec.steps) and s.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL):
        step = t.spec.steps[s.step]
        if (step.set_weight is not None or step.match is not None) and s.weight_since is not None:
            candidates.append(s.weight_since + t.spec.analysis.effective_step_duration)
        if step.pause is not None and step.pause.duration is not None:
            candidates.append(started + step.pause.duration)
        if s.approval_requested_at is not None and s.phase is Phase.AWAITING_APPROVAL:
            candidates.append(s.approval_requested_at + t.spec.approvals.timeout)
        if s.phase is Phase.PROGRESSING:
            candidates.append(started + t.spec.progress_deadline)
    unavailable = t.spec.analysis.unavailable
    if s.unavailable_since is not None and unavailable.action is UnavailableAction.ROLLBACK:
        candidates.append(s.unavailable_since + unavailable.after)
    return min(c for c in candidates if c > now)
