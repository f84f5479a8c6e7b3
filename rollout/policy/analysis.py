"""The ``spec.analysis`` part of a Rollout policy: SLOs, custom metrics, the judge and its options,
how missing data and an unavailable Prometheus are treated, and how backends appear in metrics.

Owns those fields, their defaults and their rules. Pure: no I/O.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from rollout.policy import templates
from rollout.policy.addresses import forbidden_address
from rollout.policy.base import Model
from rollout.policy.quantities import Duration, Ratio

MAX_METRICS = 20
MAX_HEADERS = 20
MAX_QUERY = 4096
# RFC 9110 field names (tokens) and values (no control characters but tab: no CR, LF, NUL).
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"
HEADER_VALUE = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
BACKEND_VALUE = r"^[^{}]*(\{backend\}[^{}]*)+$"
StrictInt = Annotated[int, Field(strict=True)]


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


TEMPLATE_VARS = ("namespace", "backend", "window", "interval", "selector", "backend_label")
# The same language as ``templates.parse`` with TEMPLATE_VARS, for the CRD's pattern.
TEMPLATE_PATTERN = r"^([^{}]|\{\{|\}\}|\{(" + "|".join(TEMPLATE_VARS) + r")\})*$"


class CustomMetric(Model):
    """A PromQL template judged against ``min`` and/or ``max``.

    Variables: ``{namespace}``, ``{backend}`` (the canary's label value), ``{backend_label}``,
    ``{selector}``, ``{window}``, ``{interval}``. Literal braces are written ``{{`` and ``}}``.
    """

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]*$", description="unique name")
    query: str = Field(
        min_length=1, max_length=MAX_QUERY, description="PromQL template returning one number for the canary"
    )
    min: float | None = Field(default=None, allow_inf_nan=False, description="fail below this")
    max: float | None = Field(default=None, allow_inf_nan=False, description="fail above this")

    @field_validator("query")
    @classmethod
    def _template(cls, value: str) -> str:
        templates.parse(value, TEMPLATE_VARS)  # raises TemplateError (a ValueError) naming the column
        return value

    @model_validator(mode="after")
    def _bounds(self) -> CustomMetric:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class MetricLabels(Model):
    """How a backend is identified in the metrics (defaults fit App Mesh / Envoy cluster stats)."""

    backend: str = Field(
        default="envoy_cluster_name",
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="label that identifies a backend",
    )
    backend_value: str = Field(
        default="{backend}",
        max_length=253,
        pattern=BACKEND_VALUE,
        description="template of that label's value; {backend} is the backend name",
    )
    selector: str = Field(default="", max_length=1024, description='extra PromQL label matchers, e.g. namespace="prod"')


class PrometheusOverride(Model):
    """Which Prometheus judges this policy: one the platform team configured (by name), or an
    address the daemon's settings allow (it never receives the daemon's credentials)."""

    endpoint: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="a Prometheus endpoint the daemon knows by this name (setting prometheus_endpoints);"
        " default: its own",
    )
    address: str | None = Field(
        default=None,
        max_length=256,
        pattern=r"^https?://",
        description="a Prometheus URL the daemon's settings allow (prometheus_policy_addresses); sent no credentials",
    )
    headers: dict[
        Annotated[str, Field(pattern=HEADER_NAME)], Annotated[str, Field(max_length=4096, pattern=HEADER_VALUE)]
    ] = Field(default_factory=dict, max_length=MAX_HEADERS, description="extra HTTP headers (e.g. a tenant)")

    @field_validator("address")
    @classmethod
    def _not_metadata(cls, value: str | None) -> str | None:
        why = forbidden_address(value) if value is not None else None
        if why is not None:
            raise ValueError(why)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> PrometheusOverride:
        if self.endpoint is not None and self.address is not None:
            raise ValueError("set at most one of endpoint and address")
        return self


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
    window: Duration | None = Field(
        default=None, description="range substituted for {window} in custom metric queries; default: interval"
    )
    step_duration: Duration | None = Field(
        default=None,
        description="minimum time the route must carry each setWeight before the step may pass; default: interval",
    )
    judge: JudgeKind = Field(
        default=JudgeKind.SEQUENTIAL, description="sequential (canary vs stable, always valid) or fixed threshold"
    )
    slos: SLOs = Field(default_factory=SLOs, description="the service level objectives judged at every step")
    metrics: list[CustomMetric] = Field(
        default_factory=list, max_length=MAX_METRICS, description="custom PromQL checks"
    )
    min_requests: StrictInt = Field(
        default=100, ge=0, description="canary requests judged at the current step's weight before the step can pass"
    )
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.HOLD,
        description="missing data (no series, NaN, no canary requests in an interval): hold, fail (counts towards "
        "failureLimit), or pass (lets a step end, never promotes); thin data always holds",
    )
    failure_limit: StrictInt = Field(
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
