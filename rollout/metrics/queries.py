"""PromQL templates: the built-in Envoy (App Mesh) queries and the rendering of custom metric templates.

Owns the text of every query rollout sends, so that the exact rendered query can be shown in
errors and verdicts. Built-in queries are batched: one query covers every backend of every rollout
that shares a window, selector and backend label, and is grouped ``by`` that label.

Metrics (as Envoy's Prometheus endpoint and the App Mesh sidecars/gateways export them):

- ``envoy_cluster_upstream_rq{envoy_cluster_name, envoy_response_code}``: a counter per response
  code. Envoy creates a code's series the first time it sees that code, so a backend that never
  failed has no 5xx series at all; the provider reads "requests series present, 5xx absent" as
  zero errors (the 5xx series are a subset of the request series) and nothing else as zero.
- ``envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name, le}``: a histogram in milliseconds.
  Requests slower than the latency bound are ``bucket{le="+Inf"} - bucket{le=B}``. Prometheus
  histograms only know their bucket bounds, so ``B`` is the smallest bucket bound that is at or
  above the SLO bound (``choose_bucket``); when the SLO bound is not itself a bucket bound, what
  is counted is "slower than B" (never more than the truly slow requests) and the sample's detail
  says so with both numbers.

This module must not do I/O; it only builds strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rollout.policy.models import CustomMetric, MetricLabels

REQUESTS_METRIC = "envoy_cluster_upstream_rq"
CODE_LABEL = "envoy_response_code"
LATENCY_BUCKET_METRIC = "envoy_cluster_upstream_rq_time_bucket"
ERROR_CODES = "5.."

# fmt: off
ENVOY_DEFAULT_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
    1800000, 3600000,
)
# fmt: on
"""Envoy's default histogram bucket bounds (milliseconds), used unless settings say otherwise."""

_REGEX_SPECIAL = set("\\.+*?()|[]{}^$")


def duration(seconds: float) -> str:
    """A PromQL duration: whole seconds as ``30s``, otherwise milliseconds (``1500ms``)."""
    if seconds <= 0:
        raise ValueError(f"a window must be positive, got {seconds}s")
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def string_literal(value: str) -> str:
    """A double-quoted PromQL string holding ``value`` verbatim."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def regex_literal(value: str) -> str:
    """An RE2 pattern matching exactly ``value`` (before PromQL string quoting)."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in value)


def backend_value(labels: MetricLabels, backend: str) -> str:
    """The value the backend label takes for ``backend`` (``MetricLabels.backend_value`` filled in)."""
    return labels.backend_value.replace("{backend}", backend)


def le_values(bound_ms: float) -> tuple[str, ...]:
    """The spellings a bucket bound takes in an ``le`` label: Envoy writes ``500``, the Python
    client ``500.0``, Go clients ``500`` or ``1e+06``."""
    spellings = {f"{bound_ms:.32g}", f"{bound_ms:g}", repr(float(bound_ms))}
    if float(bound_ms).is_integer():
        spellings.add(str(int(bound_ms)))
    return tuple(sorted(spellings))


@dataclass(frozen=True)
class BucketChoice:
    """The histogram bucket used to count slow requests for a latency bound."""

    bound_ms: float  # the SLO bound
    le_ms: float  # the bucket bound actually used (>= bound_ms)

    @property
    def exact(self) -> bool:
        return math.isclose(self.bound_ms, self.le_ms)

    def describe(self) -> str:
        if self.exact:
            return f"slow = slower than {_ms(self.le_ms)} (histogram bucket le={_ms(self.le_ms)})"
        return (
            f"slow = slower than {_ms(self.le_ms)}: the latency bound {_ms(self.bound_ms)} is not "
            f"a histogram bucket bound, so the next bucket up (le={_ms(self.le_ms)}) is used "
            "and requests between the two are not counted as slow"
        )


def _ms(value: float) -> str:
    return f"{value:g}ms"


def choose_bucket(bound_seconds: float, buckets_ms: tuple[float, ...]) -> BucketChoice | None:
    """The smallest bucket bound at or above the latency bound; None if the bound is above them all."""
    bound_ms = bound_seconds * 1000.0
    candidates = [b for b in sorted(buckets_ms) if b >= bound_ms or math.isclose(b, bound_ms)]
    if not candidates:
        return None
    return BucketChoice(bound_ms=bound_ms, le_ms=candidates[0])


@dataclass(frozen=True)
class Scope:
    """What one batched built-in query covers: the backends of every rollout sharing these settings."""

    labels: MetricLabels
    window_seconds: float
    values: tuple[str, ...]  # backend label values, sorted and distinct

    def matchers(self, *extra: str) -> str:
        parts = [self.labels.selector.strip().strip(",")] if self.labels.selector.strip() else []
        alternatives = "|".join(regex_literal(v) for v in self.values)
        parts.append(f"{self.labels.backend}=~{string_literal(alternatives)}")
        parts.extend(extra)
        return "{" + ", ".join(parts) + "}"

    def _sum(self, expression: str) -> str:
        return f"sum by ({self.labels.backend}) ({expression})"

    def requests(self) -> str:
        """Requests per backend over the window (every response code)."""
        return self._sum(f"increase({REQUESTS_METRIC}{self.matchers()}[{duration(self.window_seconds)}])")

    def errors(self) -> str:
        """5xx responses per backend over the window."""
        code = f"{CODE_LABEL}=~{string_literal(ERROR_CODES)}"
        return self._sum(f"increase({REQUESTS_METRIC}{self.matchers(code)}[{duration(self.window_seconds)}])")

    def resets(self) -> str:
        """Counter resets of the request counters per backend inside the window (Envoy restarts)."""
        return self._sum(f"resets({REQUESTS_METRIC}{self.matchers()}[{duration(self.window_seconds)}])")

    def slow(self, bucket: BucketChoice) -> str:
        """Requests slower than the chosen bucket bound per backend: ``+Inf`` bucket minus that bucket."""
        window = duration(self.window_seconds)
        le = "|".join(regex_literal(v) for v in le_values(bucket.le_ms))
        total = self._sum(f"increase({LATENCY_BUCKET_METRIC}{self.matchers('le=' + string_literal('+Inf'))}[{window}])")
        fast = self._sum(f"increase({LATENCY_BUCKET_METRIC}{self.matchers('le=~' + string_literal(le))}[{window}])")
        return f"{total} - {fast}"


def render_custom(
    metric: CustomMetric,
    *,
    namespace: str,
    backend: str,
    labels: MetricLabels,
    window_seconds: float,
    interval_seconds: float,
) -> str:
    """Fill a custom metric's template.

    Variables: ``{namespace}`` (the rollout's namespace), ``{backend}`` (the canary's backend label
    value), ``{backend_label}``, ``{selector}`` (the policy's extra matchers, may be empty),
    ``{window}`` and ``{interval}`` (PromQL durations). ``{{``/``}}`` are literal braces.
    Raises ``ValueError`` for a template that cannot be filled.
    """
    try:
        return metric.query.format(
            namespace=namespace,
            backend=backend,
            backend_label=labels.backend,
            selector=labels.selector,
            window=duration(window_seconds),
            interval=duration(interval_seconds),
        )
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"cannot fill the template of custom metric {metric.name!r}: {e!r}") from e
