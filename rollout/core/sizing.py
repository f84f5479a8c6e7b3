"""Step sizing for ``rollout plan POLICY --rps N``: at the expected traffic, how long the sequential
judge needs at each setWeight step to catch a ``regression`` and to pass a healthy canary.

Owns the expected-evidence arithmetic, consistent with ``rollout.core.judging`` (same thresholds,
mixture weights, restarts and dispersion model): the time is the evidence needed divided by the
expected evidence per interval (Wald's approximation; an interval of ``k`` events carries about
``k * KL / (1 + (k - 1) * rho)`` under the beta-binomial model), rounded up to whole intervals.
Detection assumes the e-detector restarted at this step (a fault that appears at this weight; one
present from the start is caught sooner, on the evidence carried from earlier steps). Passing
counts one more interval for the first at-weight interval to start. Pure: no I/O, no clock; it must
not print or format tables (``planning.py`` and the CLI do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta

from rollout.core.judging.evidence import SUSTAIN_S, alpha_per_slo, slo_specs
from rollout.core.judging.likelihoods import (
    ABSOLUTE_MULTIPLES,
    canary_share_of_events,
    fail_alternatives,
    pass_alternatives,
)
from rollout.policy.analysis import Analysis


@dataclass(frozen=True)
class StepSizing:
    """What one setWeight step needs at the expected traffic."""

    weight: int  # canary weight in percent
    rps: float  # expected total requests per second (both backends)
    canary_rps: float
    slo: str  # the SLO sized (errorRate, else latency)
    baseline: float  # stable's assumed event rate
    regression: float  # the multiple that must be caught
    test: str  # relative | absolute | none
    evidence_needed: float  # log e-value the fail test needs at this step (threshold + mixture + restart)
    canary_requests_needed: float | None  # canary requests to catch a `regression` (None: never)
    seconds_needed: float | None  # the same in time, whole intervals
    pass_requests_needed: float | None  # canary requests at weight to pass a healthy canary (None: never)
    pass_seconds_needed: float | None  # time at weight until a healthy canary passes, whole intervals
    step_seconds: float  # the step's minimum time at weight
    judgeable: bool  # a regression is caught within the progress deadline
    warning: str

    @property
    def time_needed(self) -> timedelta | None:
        return None if self.seconds_needed is None else timedelta(seconds=self.seconds_needed)

    @property
    def expected_seconds(self) -> float | None:
        """How long the step lasts for a healthy canary: its minimum, or the time to pass."""
        return None if self.pass_seconds_needed is None else max(self.step_seconds, self.pass_seconds_needed)


def _kl(p: float, q: float) -> float:
    """KL(Bernoulli(p) || Bernoulli(q)) in nats."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def _per_interval(events: float, kl: float, rho: float) -> float:
    """Expected evidence of one interval with ``events`` trials (beta-binomial design effect)."""
    return events * kl / (1.0 + max(events - 1.0, 0.0) * rho)


def _best_absolute(rate: float, level: float, requests: float, tau: float) -> float:
    """Expected absolute-pass evidence per interval for a canary at ``rate`` against ``level``,
    for the best alternative of the mixture (its weight is paid in the evidence needed)."""
    rho = 2 * tau * tau * rate / (1 - rate)
    best = 0.0
    for c, _ in ABSOLUTE_MULTIPLES:
        alt = c * level
        gain = rate * math.log(alt / level) + (1 - rate) * math.log((1 - alt) / (1 - level))
        best = max(best, _per_interval(requests, max(gain, 0.0), rho))
    return best


def _intervals(needed: float, per_interval: float) -> float | None:
    return None if per_interval <= 0 else math.ceil(needed / per_interval)


def size_step(
    analysis: Analysis,
    weight: int,
    rps: float,
    step_duration: timedelta | None = None,
    baseline: float | None = None,
    *,
    weight_steps: int = 1,
    deadline: timedelta = timedelta(minutes=30),
) -> StepSizing:
    """Size one step at canary ``weight`` (percent) with ``rps`` total requests per second.

    ``baseline``: stable's event rate (default: half the SLO). ``weight_steps``: the policy's
    setWeight steps (the restart weight of the fail e-detector). ``deadline``: the progress deadline.
    """
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be 0..100, got {weight}")
    if rps < 0 or math.isnan(rps):
        raise ValueError(f"rps must be a non-negative number, got {rps}")
    options = analysis.sequential
    specs = slo_specs(analysis)
    interval = analysis.interval.total_seconds()
    step_s = (step_duration or analysis.effective_step_duration).total_seconds()
    share, regression, tau = weight / 100.0, options.regression, options.dispersion
    spec = specs[0] if specs else None
    base = baseline if baseline is not None else (spec.limit / 2 if spec else 0.0)
    sized = StepSizing(
        weight, rps, rps * share, spec.name if spec else "", base, regression, "none", 0.0,
        None, None, None, None, step_s, False, "",
    )  # fmt: skip
    if spec is None or share == 0 or rps == 0 or base <= 0:
        why = (
            "no errorRate or latency SLO to size"
            if spec is None
            else "the canary gets no traffic"
            if share == 0 or rps == 0
            else "the baseline rate is zero"
        )
        return _with(sized, warning=f"step at {weight}% cannot be sized: {why}")
    alpha = alpha_per_slo(analysis)
    mixture = dict(fail_alternatives(options))
    needed = math.log(max(weight_steps, 1) / alpha) + math.log(1 / mixture[regression])
    canary_per_interval = rps * share * interval
    relative = share < 1 and options.mode != "absolute"
    if relative:
        test = "relative"
        events = rps * interval * base * (share * regression + 1 - share)
        p_bad, p_null = canary_share_of_events(share, regression), canary_share_of_events(share, options.tolerance)
        per = _per_interval(events, _kl(p_bad, p_null), 2 * tau * tau * p_bad * (1 - p_bad))
        fail_intervals = _intervals(needed, per)
    elif options.mode != "relative":
        test = "absolute"
        level = max(spec.limit, base)
        bad = min(regression * level, 0.999)
        per = _per_interval(canary_per_interval, _kl(bad, options.tolerance * level), 2 * tau * tau * bad / (1 - bad))
        cap = math.log(1 / alpha) * min(1.0, interval / SUSTAIN_S)
        fail_intervals = _intervals(needed, min(per, cap))
    else:
        return _with(sized, warning=f"step at {weight}% cannot be judged: mode relative and stable has no traffic")
    pass_intervals = _pass_intervals(analysis, share, base, rps, spec.limit)
    seconds = None if fail_intervals is None else fail_intervals * interval
    pass_seconds = None if pass_intervals is None else (pass_intervals + 1) * interval
    warnings = []
    limit = deadline.total_seconds()
    if seconds is None or seconds > limit:
        took = "never" if seconds is None else f"after about {_human(seconds)}"
        warnings.append(
            f"step at {weight}% cannot tell a {regression:g}x {spec.name} regression within the progress deadline "
            f"{_human(limit)} at {rps:g} req/s (caught {took}): a fault that shows only at this weight pauses the "
            "run instead of rolling back; raise the weight or expect more traffic"
        )
    if pass_seconds is None or pass_seconds > limit:
        took = "never" if pass_seconds is None else f"about {_human(pass_seconds)}"
        warnings.append(
            f"step at {weight}% passes a healthy canary in {took} at {rps:g} req/s (stable's {spec.name} at "
            f"{100 * base:.3g}%), beyond the progress deadline {_human(limit)}: raise the weight, `regression`, "
            "or progressDeadline"
        )
    return StepSizing(
        weight=weight,
        rps=rps,
        canary_rps=rps * share,
        slo=spec.name,
        baseline=base,
        regression=regression,
        test=test,
        evidence_needed=needed,
        canary_requests_needed=None if seconds is None else seconds * rps * share,
        seconds_needed=seconds,
        pass_requests_needed=None if pass_intervals is None else pass_intervals * canary_per_interval,
        pass_seconds_needed=pass_seconds,
        step_seconds=step_s,
        judgeable=seconds is not None and seconds <= limit,
        warning="; ".join(warnings),
    )


def _pass_intervals(analysis: Analysis, share: float, base: float, rps: float, limit: float) -> float | None:
    """At-weight intervals until a healthy canary (as good as stable at ``base``) passes."""
    options = analysis.sequential
    interval = analysis.interval.total_seconds()
    regression, tau = options.regression, options.dispersion
    canary = rps * share * interval
    weights = dict(pass_alternatives(options))
    candidates: list[float | None] = []
    if share < 1 and options.mode != "absolute":
        events = rps * interval * base
        p_good, p_null = canary_share_of_events(share, options.tolerance), canary_share_of_events(share, regression)
        per = _per_interval(events, _kl(p_good, p_null), 2 * tau * tau * p_good * (1 - p_good))
        halves = math.log(2) if options.mode == "auto" else 0.0
        candidates.append(
            _intervals(math.log(1 / options.beta) + halves + math.log(1 / weights[options.tolerance]), per)
        )
    if options.mode != "relative":
        level = regression * max(limit, base) if share >= 1 or options.mode == "absolute" else limit / regression
        if base < level:
            halves = math.log(2) if options.mode == "auto" else 0.0
            needed = math.log(1 / options.beta) + halves + math.log(1 / ABSOLUTE_MULTIPLES[0][1])
            candidates.append(_intervals(needed, _best_absolute(base, level, canary, tau)))
    found = [c for c in candidates if c is not None]
    return min(found) if found else None


def _with(sizing: StepSizing, warning: str) -> StepSizing:
    return replace(sizing, warning=warning)


def _human(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
