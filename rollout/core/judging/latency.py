"""Which histogram buckets stand for a latency SLO bound, and the warning when they cannot resolve it.

A histogram only counts requests per bucket, so "slower than 300 ms" is known exactly only when
300 ms is a bucket bound. Otherwise the judges count at the nearest buckets, each where it stays
honest: the relative test (canary vs stable, same count on both sides) and every pass test count
requests slower than the largest bucket at or below the bound (never under-counts the slow ones);
the absolute fail test counts those slower than the smallest bucket at or above it (never
over-counts). Owns that choice (``latency_buckets``), the words for it and the warning ``plan`` and
``validate`` print. Pure: no I/O; the default buckets are copied here because core may not import
the metrics layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollout.core.readings import LatencyBuckets

# fmt: off
ENVOY_DEFAULT_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
    1800000, 3600000,
)
# fmt: on
"""Envoy's default histogram bucket bounds (milliseconds); the same as ``rollout.metrics.queries``."""


def latency_buckets(bound_ms: float, buckets_ms: Sequence[float] = ENVOY_DEFAULT_BUCKETS_MS) -> LatencyBuckets:
    """The buckets at or below and at or above ``bound_ms`` (None when there is none on that side)."""
    below = [b for b in buckets_ms if b <= bound_ms]
    above = [b for b in buckets_ms if b >= bound_ms]
    return LatencyBuckets(bound_ms, max(below) if below else None, min(above) if above else None)


def _ms(value: float) -> str:
    return f"{value:g}ms"


def counted_as(buckets: LatencyBuckets | None) -> str:
    """How the latency checks counted slow requests, in words for the verdict."""
    if buckets is None or buckets.exact:
        bound = "" if buckets is None else f" {_ms(buckets.bound_ms)}"
        return f"slower than the bound{bound} (a bucket bound: exact)"
    below = f"slower than {_ms(buckets.below_ms)}" if buckets.below_ms is not None else "no bucket below"
    above = f"slower than {_ms(buckets.above_ms)}" if buckets.above_ms is not None else "no bucket above"
    return f"{below} for the relative and pass tests, {above} for the absolute fail test"


def bucket_warning(bound_ms: float, buckets_ms: Sequence[float] = ENVOY_DEFAULT_BUCKETS_MS) -> str | None:
    """A warning when the histogram cannot count requests slower than ``bound_ms`` exactly; None when
    ``bound_ms`` is a bucket bound."""
    buckets = latency_buckets(bound_ms, buckets_ms)
    if buckets.exact:
        return None
    fix = f"add a {_ms(bound_ms)} bucket to the histogram (or use a bound that is a bucket bound)"
    if buckets.below_ms is None:
        return (
            f"latency max {_ms(bound_ms)} is below every histogram bucket: the judges cannot count the "
            f"requests slower than it; {fix}"
        )
    if buckets.above_ms is None:
        return (
            f"latency max {_ms(bound_ms)} is above every histogram bucket: requests slower than it cannot "
            f"be told apart, so latency can never fail against the SLO itself; {fix}"
        )
    return (
        f"latency max {_ms(bound_ms)} is not a histogram bucket bound: the judges count requests slower than "
        f"{_ms(buckets.below_ms)} to compare canary with stable and to pass, and slower than "
        f"{_ms(buckets.above_ms)} to fail against the SLO; {fix}"
    )
