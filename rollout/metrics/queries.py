"""PromQL templates: the built-in Envoy (App Mesh) counter queries and the rendering of custom metric templates.

Owns the text of every query rollout sends, so that the exact rendered query can be shown in
errors and readings. The built-in queries read *cumulative counters* at one instant (no
``increase()``, no range, no extrapolation) and are batched: one query covers every backend of
every rollout that shares an endpoint, a selector and a backend label, matched by one regex.

Metrics (as Envoy's Prometheus endpoint and the App Mesh sidecars/gateways export them):

- ``envoy_cluster_upstream_rq{envoy_cluster_name, envoy_response_code}``: a counter per response
  code. Envoy creates a code's series the first time it sees that code, so a backend that never
  failed has no 5xx series; ``sum without (envoy_response_code)`` folds every code of one scrape
  target into one counter, so a code appearing later is just more requests on that counter.
- ``envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name, le}``: a histogram in milliseconds.
  Prometheus histograms only know their bucket bounds, so a latency SLO bound is bracketed by the
  largest bucket bound at or below it and the smallest at or above it (``latency_buckets``): the
  requests slower than the lower one are at least the truly slow ones, those slower than the
  upper one at most.

A *scrape target* (one Envoy) is identified by a series' labels minus ``TARGET_EXCLUDED``.
This module must not do I/O; it only builds strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rollout.core.readings import LatencyBuckets
from rollout.policy.models import CustomMetric, MetricLabels

REQUESTS_METRIC = "envoy_cluster_upstream_rq"
CODE_LABEL = "envoy_response_code"
LATENCY_BUCKET_METRIC = "envoy_cluster_upstream_rq_time_bucket"
ERROR_CODES = "5.."
TARGET_EXCLUDED = frozenset({"__name__", CODE_LABEL, "le"})
"""Labels that do not identify a scrape target: the metric name, the response code, the bucket bound."""

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


def latency_buckets(bound_seconds: float, buckets_ms: Sequence[float]) -> LatencyBuckets:
    """The bucket bounds that bracket a latency SLO bound: the largest at or below it, the smallest
    at or above it (None where there is none); a bound that is a bucket bound is both."""
    bound_ms = bound_seconds * 1000.0
    for b in buckets_ms:
        if math.isclose(b, bound_ms, rel_tol=1e-9):
            return LatencyBuckets(bound_ms=float(b), below_ms=float(b), above_ms=float(b))
    below = max((float(b) for b in buckets_ms if b < bound_ms), default=None)
    above = min((float(b) for b in buckets_ms if b > bound_ms), default=None)
    return LatencyBuckets(bound_ms=bound_ms, below_ms=below, above_ms=above)


def describe_buckets(buckets: LatencyBuckets) -> str:
    """What ``slow`` and ``slow_above`` count for these buckets, in one sentence."""
    if buckets.exact:
        return f"slow = slower than {_ms(buckets.bound_ms)} (a histogram bucket bound)"
    below = f"slower than {_ms(buckets.below_ms)}" if buckets.below_ms is not None else "every request"
    above = (
        f"slower than {_ms(buckets.above_ms)}"
        if buckets.above_ms is not None
        else "0 (no bucket bound above it: nothing is known to be slower)"
    )
    return (
        f"the latency bound {_ms(buckets.bound_ms)} is not a histogram bucket bound: "
        f"slow = {below} (at least the truly slow requests), slow_above = {above} (at most)"
    )


def _ms(value: float | None) -> str:
    return f"{value:g}ms"


@dataclass(frozen=True)
class Scope:
    """What one batched built-in query covers: the backends of every rollout sharing these settings."""

    labels: MetricLabels
    values: tuple[str, ...]  # backend label values, sorted and distinct

    def matchers(self, *extra: str) -> str:
        parts = [self.labels.selector.strip().strip(",")] if self.labels.selector.strip() else []
        alternatives = "|".join(regex_literal(v) for v in self.values)
        parts.append(f"{self.labels.backend}=~{string_literal(alternatives)}")
        parts.extend(extra)
        return "{" + ", ".join(parts) + "}"

    def requests(self) -> str:
        """Cumulative requests per scrape target (every response code folded into one counter)."""
        return f"sum without ({CODE_LABEL}) ({REQUESTS_METRIC}{self.matchers()})"

    def errors(self) -> str:
        """Cumulative 5xx responses per scrape target."""
        code = f"{CODE_LABEL}=~{string_literal(ERROR_CODES)}"
        return f"sum without ({CODE_LABEL}) ({REQUESTS_METRIC}{self.matchers(code)})"

    def sample_times(self) -> str:
        """The timestamp of the sample each target's counters were read from (Unix seconds)."""
        return f"max without ({CODE_LABEL}) (timestamp({REQUESTS_METRIC}{self.matchers()}))"

    def buckets(self, bounds_ms: Iterable[float]) -> str:
        """The cumulative histogram buckets at ``bounds_ms`` and ``+Inf``, every spelling of each bound."""
        spellings = sorted({s for b in bounds_ms for s in le_values(b)})
        pattern = "|".join([*(regex_literal(s) for s in spellings), regex_literal("+Inf")])
        return f"{LATENCY_BUCKET_METRIC}{self.matchers('le=~' + string_literal(pattern))}"


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
