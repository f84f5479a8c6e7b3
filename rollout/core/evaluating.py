"""From a tick's counter reading to a verdict: each interval judged once, at-weight data marked.

Owns the bridge between the metrics and the judge. The state keeps the last counter reading the
judge absorbed (``baseline``); a new reading becomes an ``Interval`` by ``readings.difference``,
so an interval always starts where the previous one ended and a reading seen twice (a wake by a
command, a timer between two scrapes) adds nothing. An interval is *at weight* when its first
sample was taken after the route was seen carrying the current step's weight (and an A/B step's
managed route): only those can make a step pass. During an A/B step the canary's share is
unknown (it gets whatever matches); the judge is told so (``JudgeInput.weight`` is None).
Prometheus being unreachable holds (or rolls back after ``unavailable.after``); a broken query
holds and says so. Pure; called by ``engine.decide``.
"""

from __future__ import annotations

from dataclasses import replace

from rollout.core.actions import Level
from rollout.core.judging import judge
from rollout.core.judging.base import JudgeInput
from rollout.core.readings import Interval, Outcome, Reading, carry, difference
from rollout.core.states import Phase
from rollout.core.ticking import Tick, fmt, rollback
from rollout.core.verdicts import Verdict, VerdictKind
from rollout.policy.models import UnavailableAction

_JUDGED = (Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL)


def evaluate(t: Tick) -> Verdict | None:
    """Judge what is new in this tick's reading, if anything; returns the verdict given now."""
    reading = t.obs.reading
    if reading is None or t.state.phase not in _JUDGED:
        return None
    if t.state.judged_at is not None and reading.taken_at <= t.state.judged_at:
        return None  # this reading was judged already
    if reading.outcome is Outcome.UNAVAILABLE:
        _unavailable(t, reading)
        return None
    t.state = replace(t.state, unavailable_since=None)
    if reading.outcome is Outcome.QUERY_ERROR and reading.canary is None:
        message = f"holding: a metric query is broken: {reading.detail}"
        if t.state.phase is not Phase.PAUSED:
            t.set_message(message)
        t.say(message)
        return None
    share = t.state.share  # None: an A/B step's managed route sends the canary what matches
    if reading.canary is None:  # no counters for the canary: nothing to count this time
        if share == 0:
            return None
        why = f"no usable data: {reading.outcome.value}: {reading.detail}"
        return _judge(t, reading, None, at_weight=False, reason=why)
    base = t.state.baseline
    t.state = replace(t.state, baseline=carry(base, reading))
    if base is None:
        t.say("counting starts at this reading")
        return None
    interval = difference(base, reading)
    if interval is None or (share == 0 and t.state.desired_share == 0):
        return None  # no newer sample, or nothing to judge at 0%
    since = t.state.weight_since
    at_weight = since is not None and interval.start >= since and t.state.in_place
    return _judge(t, reading, interval, at_weight=at_weight, reason="")


def _judge(t: Tick, reading: Reading, interval: Interval | None, *, at_weight: bool, reason: str) -> Verdict:
    s = t.state
    inp = JudgeInput(
        outcome=reading.outcome,
        interval=interval,
        at_weight=at_weight,
        weight=s.desired_share,
        step=s.step,
        weight_steps=max(sum(1 for step in t.spec.steps if step.set_weight is not None or step.match), 1),
        new_step=s.verdict_step != s.step,
        reason=reason,
        custom=dict(reading.custom),
        latency=reading.latency,
    )
    verdict, memory = judge(t.spec.analysis, s.judge, inp)
    t.state = replace(s, judge=memory, verdict=verdict, verdict_step=s.step, judged_at=reading.taken_at)
    t.say(f"verdict {verdict.kind.value}: {verdict.summary}")
    if verdict.rollback:
        t.notify("failed", "rollout.check-failed", Level.FAILURE, f"the canary failed: {verdict.summary}")
        rollback(t, "the canary failed its checks", verdict.summary)
    elif verdict.kind is VerdictKind.FAIL:
        key = f"failure-{s.step}-{reading.taken_at.timestamp():.0f}"
        t.notify(key, "rollout.check-failed", Level.WARNING, f"a check failed: {verdict.summary}")
    return verdict


def _unavailable(t: Tick, reading: Reading) -> None:
    since = t.state.unavailable_since or t.now
    t.state = replace(t.state, unavailable_since=since)
    message = f"holding: metrics unavailable since {since:%H:%M:%S}: {reading.detail}"
    if t.state.phase is not Phase.PAUSED:
        t.set_message(message)
    t.say(message)
    policy = t.spec.analysis.unavailable
    if policy.action is UnavailableAction.ROLLBACK and t.now - since >= policy.after:
        rollback(t, f"metrics unavailable for {fmt(t.now - since)} (unavailable.after is {fmt(policy.after)})")
