"""Step sizing for ``rollout plan POLICY --rps N``: how many canary requests and how much time a
step needs before the sequential judge can catch a ``regression``-times error-rate regression.

Owns the expected-sample-size arithmetic (Wald's approximation: evidence needed divided by the
expected evidence per second, rounded up to whole analysis intervals), consistent with
``rollout.core.judging.sequential``. Pure: no I/O, no clock; it must not print or format tables
(``planning.py`` and the CLI do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta

from rollout.core.judging.sequential import alphas, fail_mixture, slo_specs
from rollout.policy.models import Analysis


@dataclass(frozen=True)
class StepSizing:
    """What one setWeight step needs, at the expected traffic, to detect the regression."""

    weight: int  # canary weight in percent
    rps: float  # expected total requests per second (both arms)
    canary_rps: float
    slo: str  # the SLO the sizing is for (errorRate, else latency)
    baseline: float  # assumed stable (good) event rate
    regression: float  # the multiple that must be detected
    test: str  # "relative", "absolute" or "none"
    evidence_needed: float  # log e-value threshold plus the mixture's cost
    canary_requests_needed: float | None  # None: this step can never judge
    seconds_needed: float | None  # rounded up to whole intervals
    step_seconds: float
    judgeable: bool
    warning: str

    @property
    def time_needed(self) -> timedelta | None:
        return None if self.seconds_needed is None else timedelta(seconds=self.seconds_needed)


def _kl_bernoulli(p: float, q: float) -> float:
    """KL(Bernoulli(p) || Bernoulli(q)) in nats."""
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def size_step(
    analysis: Analysis,
    weight: int,
    rps: float,
    step_duration: timedelta | None = None,
    baseline: float | None = None,
) -> StepSizing:
    """Size one step at canary ``weight`` (percent) with ``rps`` total requests per second.

    ``baseline`` is the stable arm's event rate (default: half the SLO). The relative test is
    sized for a canary at ``regression`` x baseline; the absolute one (weight 100, or
    ``mode: absolute``) for a canary at ``regression`` x the SLO.
    """
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be 0..100, got {weight}")
    if rps < 0 or math.isnan(rps):
        raise ValueError(f"rps must be a non-negative number, got {rps}")
    options = analysis.sequential
    specs = slo_specs(analysis)
    step_s = (step_duration or analysis.effective_step_duration).total_seconds()
    interval_s = analysis.interval.total_seconds()
    share = weight / 100.0
    regression = options.regression
    unjudged = StepSizing(
        weight=weight,
        rps=rps,
        canary_rps=rps * share,
        slo=specs[0].name if specs else "",
        baseline=0.0,
        regression=regression,
        test="none",
        evidence_needed=0.0,
        canary_requests_needed=None,
        seconds_needed=None,
        step_seconds=step_s,
        judgeable=False,
        warning="",
    )
    if not specs:
        return _never(unjudged, "no errorRate or latency SLO: the sequential judge has nothing to judge")
    slo = specs[0]
    base = baseline if baseline is not None else slo.limit / 2
    unjudged = replace(unjudged, baseline=base)
    budget = alphas(options, len(specs))
    relative = 0 < share < 1 and options.mode != "absolute"
    canary_rps = rps * share
    if relative:
        test = "relative"
        mixture = dict(fail_mixture(options))
        needed = math.log(1 / budget.relative) + math.log(1 / mixture[regression])
        p_null = share * options.tolerance / (share * options.tolerance + 1 - share)
        p_alt = share * regression / (share * regression + 1 - share)
        events_per_s = rps * base * (share * regression + 1 - share)
        per_second = events_per_s * _kl_bernoulli(p_alt, p_null)
    elif share > 0 and budget.absolute > 0:
        test = "absolute"
        needed = math.log(1 / budget.absolute)
        p0 = min(max(slo.limit, 1e-9), 0.5)
        per_second = canary_rps * _kl_bernoulli(min(regression * p0, 0.999), p0)
    else:
        why = (
            "the canary gets no traffic at weight 0"
            if share == 0
            else "mode: relative and stable gets no traffic at weight 100"
        )
        return _never(unjudged, why)
    if per_second <= 0:
        return _never(
            replace(unjudged, test=test, evidence_needed=needed),
            "no expected events: the baseline or the traffic is zero",
        )
    per_request = per_second / canary_rps
    seconds = math.ceil(needed / per_second / interval_s) * interval_s
    judgeable = seconds <= step_s
    warning = (
        ""
        if judgeable
        else (
            f"step at {weight}% is too short to judge: detecting a {regression:g}x {slo.name} "
            f"regression needs about {needed / per_request:,.0f} canary requests "
            f"({_human(seconds)} at {canary_rps:.3g} canary req/s) but the step lasts {_human(step_s)}; "
            f"lengthen the step, raise its weight, or expect it to hold"
        )
    )
    return StepSizing(
        weight,
        rps,
        canary_rps,
        slo.name,
        base,
        regression,
        test,
        needed,
        needed / per_request,
        seconds,
        step_s,
        judgeable,
        warning,
    )


def _never(base: StepSizing, why: str) -> StepSizing:
    return replace(
        base,
        canary_requests_needed=None,
        seconds_needed=None,
        judgeable=False,
        warning=f"step at {base.weight}% can never judge: {why}",
    )


def _human(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
