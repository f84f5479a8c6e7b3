"""The route as observed on a tick: our write landed, did not land, failed, or someone else moved it.

Owns the rules that keep status truthful and never stomp on a person's edit:

- the route carries what rollout wants: any pending write is confirmed and the step's weight
  clock starts (``weight_since``);
- a write is *pending* from the decision that asked for it until the route is seen carrying it or
  the adapter reports it stored; only while it is pending, and not reported stored, does a route
  still at the weights it had before mean "our write did not land" (re-applied, or reported once
  and paused when the adapter says retrying cannot help) — a person who puts the old weights back
  right after our write is drift like any other edit;
- anything else is drift, in whatever direction (canary taken out by hand, back to the previous
  step, beyond the plan): the run pauses and says so, and the weights are not touched until
  ``rollout resume`` (restore rollout's weights) or ``rollout abort`` (stable 100%);
- a route that cannot be read holds the run (and pauses it once when the reason is permanent).

An A/B step's managed route (``RolloutState.match``) follows the same rules, and comes first: a
person's change to either pauses the run before anything is re-applied; the managed route is
re-applied before the weights; the route carries what rollout wants only when both its weights
and its managed route do (someone deleting, editing or adding the managed route is drift too).

Pure; called by ``engine.decide``.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from enum import StrEnum

from rollout.core.actions import Level, WeightPurpose
from rollout.core.matches import shown
from rollout.core.states import PauseReason, Phase, ProblemKind, RouteProblem
from rollout.core.ticking import Tick

MAX_REAPPLY = 5  # re-applications of one lost write before the run pauses and says why


class RouteView(StrEnum):
    """What the route told us on this tick."""

    IN_ORDER = "in-order"  # it carries what rollout wants (or the run is rolling back)
    NOT_LANDED = "not-landed"  # our pending write is not there: ``reapply`` writes it again
    STUCK = "stuck"  # our write cannot land (reported; paused or waiting for a person)
    DRIFT = "drift"  # someone else changed it
    UNREADABLE = "unreadable"


def observe_route(t: Tick) -> RouteView:
    """Record what the route carries and what that means; writes nothing (see ``reapply``)."""
    live = t.obs.route
    if live is None:
        problem = t.obs.route_problem or RouteProblem(ProblemKind.UNAVAILABLE, "the route could not be read")
        report_problem(t, problem, reading=True)
        return RouteView.UNREADABLE
    t.state = replace(t.state, observed=live, match_observed=t.obs.match)
    if t.state.phase is Phase.ROLLING_BACK:
        return RouteView.IN_ORDER  # rollback writes unconditionally (stepping)
    s = t.state
    if s.pending is not None and t.obs.write_landed == s.pending.target and live != s.desired:
        # Our write was stored; the route carries something else now: someone changed it since.
        t.state = s = replace(s, pending=None)
    weights_drift = live != s.desired and (s.pending is None or live != s.pending.before)
    match_drift = s.match_observed != s.match and (
        s.match_pending is None or s.match_observed != s.match_pending.before
    )
    if weights_drift or match_drift:  # a person's change comes first: nothing is re-applied over it
        (_drift if weights_drift else _match_drift)(t)
        return RouteView.DRIFT
    if s.match_observed != s.match:
        return _not_landed(t, match=True)  # the managed route first, the weights once it is seen
    if s.match_pending is not None:
        t.state = replace(t.state, match_pending=None, route_problem=None, route_problem_since=None)
    if live != t.state.desired:
        return _not_landed(t, match=False)
    if t.state.pending is not None or t.state.route_problem is not None:
        t.state = replace(t.state, pending=None, route_problem=None, route_problem_since=None)
    if t.state.weight_since is None:
        t.state = replace(t.state, weight_since=t.now)
    return RouteView.IN_ORDER


def reapply(t: Tick, *, failed_now: bool) -> None:
    """Write our pending managed route, else our pending weights, again (it did not land) unless a
    check failed on this tick and it would give the canary more traffic: then the write waits for
    a tick that does not fail."""
    if t.state.phase is Phase.PAUSED:
        return
    lost = t.state.match_pending
    if lost is not None and t.state.match_observed != t.state.match:
        wanted = shown(lost.target)
        if failed_now and lost.target is not None:
            t.say(f"not re-applying {wanted} on a tick whose check failed")
            return
        failure = t.obs.write_problem
        why = f"failed ({failure.message})" if failure is not None else "did not land"
        t.set_match(lost.target, WeightPurpose.REAPPLY, f"our write of {wanted} {why}; writing it again")
        t.say(f"re-applying {wanted}")
        return
    pending = t.state.pending
    if pending is None:
        return
    live = t.state.observed or pending.before
    if failed_now and pending.target.canary > live.canary:
        t.say(f"not re-applying {pending.target} on a tick whose check failed")
        return
    failure = t.obs.write_problem
    why = f"failed ({failure.message})" if failure is not None else "did not land"
    t.move(pending.target, WeightPurpose.REAPPLY, f"our write of {pending.target} {why}; writing it again")
    t.say(f"re-applying {pending.target} (attempt {t.state.pending.attempts if t.state.pending else 0})")


def report_problem(t: Tick, problem: RouteProblem, *, reading: bool) -> None:
    """Record ``problem`` (a condition in status); pause once when retrying cannot fix it."""
    first = t.state.route_problem != problem
    t.state = replace(
        t.state,
        route_problem=problem,
        route_problem_since=t.state.route_problem_since if not first else t.now,
    )
    verb = "read" if reading else "write"
    message = f"cannot {verb} the route: {problem.message}"
    if problem.kind.permanent and t.state.phase in (Phase.PROGRESSING, Phase.AWAITING_APPROVAL, Phase.PROMOTING):
        t.pause(
            PauseReason.ROUTE_ERROR,
            f"{problem.kind.value}: {problem.message}",
            f"paused: {message}; fix it, then `rollout resume` (or `rollout abort`)",
        )
        t.notify(f"route-{problem.kind.value}-{t.state.step}", "rollout.route-error", Level.WARNING, t.state.message)
    elif t.state.phase is not Phase.PAUSED:
        t.set_message(f"holding: {message}")
    t.say(message)


def _not_landed(t: Tick, *, match: bool) -> RouteView:
    """Our pending write (the managed route's with ``match``, else the weights') is not on the route."""
    pending = t.state.match_pending if match else t.state.pending
    assert pending is not None
    target = shown(t.state.match) if match else str(t.state.desired)
    failure = t.obs.write_problem
    if failure is not None and failure.kind.permanent:
        report_problem(t, failure, reading=False)
        return RouteView.STUCK
    if t.state.phase is Phase.PAUSED:
        return RouteView.STUCK  # paused (by a person or a problem): nothing is written until resumed
    if pending.attempts >= MAX_REAPPLY:
        detail = failure.message if failure is not None else "the route did not change"
        problem = RouteProblem(
            failure.kind if failure is not None else ProblemKind.CONFLICT,
            f"rollout's write of {target} did not land after {pending.attempts} attempts: {detail}",
        )
        report_problem(t, problem, reading=False)
        if not _paused(t):
            t.pause(
                PauseReason.ROUTE_ERROR, problem.message, f"paused: {problem.message}; `rollout resume` tries again"
            )
            t.notify(f"route-stuck-{t.state.step}", "rollout.route-error", Level.WARNING, t.state.message)
        return RouteView.STUCK
    if failure is not None:
        report_problem(t, failure, reading=False)
    return RouteView.NOT_LANDED


def _drift(t: Tick) -> None:
    live, mine = t.state.observed, t.state.desired
    assert live is not None
    message = (
        f"paused: someone changed the route's weights to {live} (rollout set {mine}); "
        "`rollout resume` restores rollout's weights, `rollout abort` rolls back"
    )
    if t.state.phase is not Phase.PAUSED or t.state.pause_reason is not PauseReason.DRIFT:
        t.pause(PauseReason.DRIFT, f"route carries {live}, rollout set {mine}", message)
    elif t.state.pause_detail != f"route carries {live}, rollout set {mine}":
        t.state = replace(t.state, pause_detail=f"route carries {live}, rollout set {mine}", message=message)
    t.state = replace(t.state, pending=None, weight_since=None)
    t.notify(f"drift-{t.state.step}-{live.canary}", "rollout.drift", Level.WARNING, message)
    t.say(message)


def _match_drift(t: Tick) -> None:
    live, mine = shown(t.state.match_observed), shown(t.state.match)
    detail = f"route has {live}, rollout set {mine}"
    message = (
        f"paused: someone changed the A/B step's managed route: the route has {live} (rollout set {mine}); "
        "`rollout resume` restores rollout's, `rollout abort` removes it and rolls back"
    )
    if t.state.phase is not Phase.PAUSED or t.state.pause_reason is not PauseReason.DRIFT:
        t.pause(PauseReason.DRIFT, detail, message)
    elif t.state.pause_detail != detail:
        t.state = replace(t.state, pause_detail=detail, message=message)
    t.state = replace(t.state, match_pending=None, weight_since=None)
    t.notify(f"drift-{t.state.step}-match-{zlib.crc32(live.encode())}", "rollout.drift", Level.WARNING, message)
    t.say(message)


def _paused(t: Tick) -> bool:
    return t.state.phase is Phase.PAUSED
