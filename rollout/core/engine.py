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

from datetime import datetime

from rollout.core.actions import (
    Level,
    ScheduleNext,
    SetWeights,
    WeightPurpose,
)
from rollout.core.commanding import PAUSE_STEP, apply_commands
from rollout.core.judging import judge
from rollout.core.states import (
    JudgeMemory,
    Observations,
    Outcome,
    Phase,
    RolloutState,
    VerdictKind,
)
from rollout.core.stepping import advance, next_tick
from rollout.core.ticking import Decision, Tick, fmt, rollback
from rollout.policy.models import Rollout, UnavailableAction


def decide(policy: Rollout, state: RolloutState, obs: Observations, now: datetime) -> Decision:
    """Decide what to do for ``policy`` given its persisted ``state``, this tick's ``obs`` and ``now``."""
    t = Tick(policy, state, obs, now)
    apply_commands(t.policy, t, obs.commands)
    if t.state.revision != policy.revision and not t.state.phase.active:
        _new_run(t, superseded=False)
    elif t.state.revision != policy.revision and t.state.phase is not Phase.ROLLING_BACK:
        if _same_backends(t.state, policy):
            _new_run(t, superseded=True)
        else:  # the old pair's traffic must go home first; the new run starts once stable has 100%
            rollback(
                t,
                f"superseded by revision {policy.revision}, which names other backends: "
                f"restoring {t.state.stable_backend} to 100% before starting it",
            )

    if t.state.phase is Phase.PENDING:
        _start(t)
    if t.state.phase.active and _weights_in_order(t):
        if t.state.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL):
            _judge(t)
        advance(t)
    if t.state.phase.final:
        t.say(f"{t.state.phase.value}: {t.state.end_reason or t.state.message}".rstrip(": "))
    else:
        t.actions.append(ScheduleNext(at=next_tick(t)))
    t.set(updated_at=now)
    return Decision(state=t.state, actions=tuple(t.actions), reason="; ".join(t.reasons) or t.state.message)


# --- runs -------------------------------------------------------------------------------------


def _same_backends(state: RolloutState, policy: Rollout) -> bool:
    mine = (state.stable_backend, state.canary_backend)
    return mine in (("", ""), (policy.spec.stable, policy.spec.canary))


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
    live = t.obs.weights or old.weights
    t.state = RolloutState(
        phase=Phase.PENDING,
        revision=t.policy.revision,
        weights=live,
        prior_weights=live,
        handled_commands=old.handled_commands,
    )
    t.say(f"new revision {t.policy.revision}")


def _start(t: Tick) -> None:
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


def _weights_in_order(t: Tick) -> bool:
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


def _judge(t: Tick) -> None:
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
            rollback(
                t,
                f"metrics unavailable for {fmt(t.now - since)} (unavailable.after is {fmt(policy.after)})",
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
            rollback(
                t,
                f"the sequential test found the canary worse than allowed (false-rollback risk <= {alpha:g})",
                verdict.summary,
            )
        elif failures >= analysis.failure_limit:
            rollback(t, f"{failures} failed checks (failureLimit {analysis.failure_limit})", verdict.summary)


__all__ = ["PAUSE_STEP", "Decision", "JudgeMemory", "decide"]
