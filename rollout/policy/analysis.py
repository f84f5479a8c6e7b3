"""The ``spec.analysis`` part of a Rollout policy: SLOs, custom metrics, the judge and its options,
how missing data and an unavailable Prometheus are treated, and how backends appear in metrics.

Owns those fields, their defaults and their rules. Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from rollout.policy.base import Model
from rollout.policy.quantities import Duration, Ratio


class NoDataPolicy(StrEnum):
    HOLD = "hold"
    FAIL = "fail"
    PASS = "pass"


class JudgeKind(StrEnum):
    SEQUENTIAL = "sequential"
    THRESHOLD = "threshold"


class ErrorRateSLO(Model):
    """Share of failed (5xx) requests among the canary's requests."""

    max: Ratio = Field(description="largest tolerated share of 5xx, e.g. 1% or 0.01")


class LatencySLO(Model):
    """The ``percentile``-th latency must stay at or below ``max``; judged as the share of slower requests."""

    percentile: float = Field(default=99.0, gt=0, lt=100, description="which percentile, e.g. 99")
    max: Duration = Field(description="its largest tolerated value, e.g. 300ms")

    @field_validator("max")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("latency max must be positive")
        return value

    @property
    def max_slow_share(self) -> float:
        """The share of requests allowed to be slower than ``max`` (p99 -> 1%)."""
        return 1.0 - self.percentile / 100.0


class SLOs(Model):
    error_rate: ErrorRateSLO | None = Field(default=None, description="the error-rate SLO")
    latency: LatencySLO | None = Field(default=None, description="the latency SLO")


_TEMPLATE_VARS = {"namespace", "backend", "window", "interval", "selector", "backend_label"}


class CustomMetric(Model):
    """A PromQL template judged against ``min`` and/or ``max``.

    Variables: ``{namespace}``, ``{backend}`` (the canary's label value), ``{backend_label}``,
    ``{selector}``, ``{window}``, ``{interval}``. Literal braces are written ``{{`` and ``}}``.
    """

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]*$", description="unique name")
    query: str = Field(min_length=1, description="PromQL template returning one number for the canary")
    min: float | None = Field(default=None, description="fail below this")
    max: float | None = Field(default=None, description="fail above this")

    @model_validator(mode="after")
    def _bounds(self) -> CustomMetric:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        unknown = set(re.findall(r"(?<!\{)\{([a-zA-Z_]*)\}(?!\})", self.query)) - _TEMPLATE_VARS
        if unknown:
            raise ValueError(
                f"unknown template variable(s) {sorted(unknown)} in query; known: {sorted(_TEMPLATE_VARS)}"
            )
        return self


class MetricLabels(Model):
    """How a backend is identified in the metrics (defaults fit App Mesh / Envoy cluster stats)."""

    backend: str = Field(
        default="envoy_cluster_name",
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="label that identifies a backend",
    )
    backend_value: str = Field(
        default="{backend}", description="template of that label's value; {backend} is the backend name"
    )
    selector: str = Field(default="", description='extra PromQL label matchers, e.g. namespace="prod"')


class PrometheusOverride(Model):
    """Per-policy overrides of the daemon's Prometheus settings."""

    address: str | None = Field(default=None, pattern=r"^https?://", description="another Prometheus for this policy")
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers (e.g. a tenant)")


class UnavailableAction(StrEnum):
    HOLD = "hold"
    ROLLBACK = "rollback"


class Unavailable(Model):
    """What prolonged metrics unavailability means: keep holding, or roll back after ``after``."""

    action: UnavailableAction = Field(default=UnavailableAction.HOLD, description="hold, or roll back")
    after: Duration = Field(default=timedelta(minutes=10), description="how long unavailable before `rollback`")


class SequentialOptions(Model):
    """Options of the sequential judge (``judge: sequential``)."""

    alpha: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="bound on the probability of ever rolling back a canary as good as stable",
    )
    beta: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="bound on the probability that a step passes while the canary's rate is at least "
        "max(`regression` x stable, SLO / `regression`) (at 100%: `regression` x max(SLO, stable's rate earlier))",
    )
    regression: float = Field(
        default=2.0,
        gt=1,
        le=16,
        description="canary/stable ratio that must be caught; a step passes only on evidence that the canary is "
        "below it (or below SLO / regression)",
    )
    tolerance: float = Field(
        default=1.0,
        ge=1,
        le=8,
        description="canary/stable ratio still as good as stable: the false-rollback bound covers it",
    )
    dispersion: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="healthy interval-to-interval variation of each backend's error (or slow) rate, as the "
        "standard deviation of its logarithm (0.2: about +-30% uniform); the false-rollback bound covers it, "
        "0 assumes none",
    )
    mode: Literal["auto", "relative", "absolute"] = Field(
        default="auto",
        description="relative: canary vs stable; absolute: canary vs max(SLO, stable's rate); "
        "auto: relative, absolute for intervals where stable has no traffic (the 100% step)",
    )

    @model_validator(mode="after")
    def _tolerance_below_regression(self) -> SequentialOptions:
        if self.tolerance >= self.regression:
            raise ValueError(f"tolerance ({self.tolerance}) must be below regression ({self.regression})")
        return self


class Analysis(Model):
    """How each step is judged."""

    interval: Duration = Field(default=timedelta(seconds=30), description="how often the canary is judged")
    window: Duration | None = Field(default=None, description="query range; default: interval")
    step_duration: Duration | None = Field(
        default=None, description="minimum time at each setWeight step; default: interval"
    )
    judge: JudgeKind = Field(
        default=JudgeKind.SEQUENTIAL, description="sequential (canary vs stable, always valid) or fixed threshold"
    )
    slos: SLOs = Field(default_factory=SLOs, description="the service level objectives judged at every step")
    metrics: list[CustomMetric] = Field(default_factory=list, description="custom PromQL checks")
    min_requests: int = Field(
        default=100, ge=0, description="canary requests judged at the current step's weight before the step can pass"
    )
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.HOLD,
        description="missing data (no series, NaN, no canary requests in an interval): hold, fail (counts towards "
        "failureLimit), or pass (lets a step end, never promotes); thin data always holds",
    )
    failure_limit: int = Field(
        default=2,
        ge=1,
        description="failed fixed-limit judgements (threshold judge, custom metrics, noData: fail) before rolling back",
    )
    unavailable: Unavailable = Field(default_factory=Unavailable)
    metric_labels: MetricLabels = Field(default_factory=MetricLabels)
    prometheus: PrometheusOverride = Field(default_factory=PrometheusOverride)
    sequential: SequentialOptions = Field(default_factory=SequentialOptions)

    @field_validator("interval")
    @classmethod
    def _interval_floor(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        return value

    @model_validator(mode="after")
    def _unique_metric_names(self) -> Analysis:
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate metric name(s): {', '.join(dupes)}")
        return self

    @property
    def effective_window(self) -> timedelta:
        return self.window or self.interval

    @property
    def effective_step_duration(self) -> timedelta:
        return self.step_duration or self.interval
