"""The reading rules of ``rollout.metrics.assembling`` on hand-made Prometheus answers (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rollout.core.readings import LatencyBuckets, Outcome, TargetCounters
from rollout.errors import MetricsQueryError, MetricsUnavailable
from rollout.metrics.assembling import (
    GroupAnswers,
    buckets_by_target,
    build_reading,
    by_target,
    custom_value,
    target_id,
)
from rollout.metrics.base import AnalysisRequest

AT = datetime(2026, 1, 1, tzinfo=UTC)
REQ = AnalysisRequest(
    key="ns/r", namespace="ns", stable="s", canary="c", interval_seconds=30, latency_bound_seconds=0.3
)
BRACKET = LatencyBuckets(bound_ms=300, below_ms=250, above_ms=500)
POD = {"instance": "gw-0:9901", "job": "envoy"}


def series(backend: str, value: float, **labels: str) -> dict[str, Any]:
    return {"metric": {"envoy_cluster_name": backend, **POD, **labels}, "value": [AT.timestamp(), repr(value)]}


def answers(
    requests: dict[str, float],
    errors: dict[str, float] | None = None,
    buckets: dict[str, tuple[float, ...]] | None = None,
) -> GroupAnswers:
    """Answers for one target per backend; ``buckets``: backend -> (le 250, le 500, +Inf)."""
    group = GroupAnswers(requests_query="RQ", errors_query="EQ", times_query="TQ", buckets_query="BQ")
    group.requests = by_target([series(b, n) for b, n in requests.items()], "envoy_cluster_name")
    group.errors = by_target([series(b, n) for b, n in (errors or {}).items()], "envoy_cluster_name")
    group.times = by_target([series(b, 1_700_000_000.0) for b in requests], "envoy_cluster_name")
    bucket_series = [
        series(b, n, le=le)
        for b, counts in (buckets or {}).items()
        for le, n in zip(("250", "500", "+Inf"), counts, strict=True)
    ]
    group.buckets = buckets_by_target(bucket_series, "envoy_cluster_name")
    return group


def test_target_id_ignores_name_code_and_bucket_and_nothing_else() -> None:
    base = {"envoy_cluster_name": "c", **POD}
    same = target_id(base)
    assert len(same) == 12
    assert target_id({**base, "__name__": "envoy_cluster_upstream_rq", "envoy_response_code": "503"}) == same
    assert target_id({**base, "__name__": "envoy_cluster_upstream_rq_time_bucket", "le": "+Inf"}) == same
    assert target_id({**base, "instance": "gw-1:9901"}) != same


def test_ok_reading_with_counters_per_target_and_bracketed_slow_counts() -> None:
    group = answers({"c": 100.0, "s": 900.0}, {"s": 9.0}, {"c": (90.0, 97.0, 100.0), "s": (880.0, 895.0, 900.0)})
    reading = build_reading(REQ, group, BRACKET, {}, AT)
    assert reading.outcome is Outcome.OK
    assert reading.canary is not None
    assert reading.stable is not None
    (canary,) = reading.canary.values()
    (stable,) = reading.stable.values()
    # no 5xx series for the canary: zero errors (the one inference); slow = +Inf - le=250, slow_above = +Inf - le=500
    assert canary == TargetCounters(requests=100.0, errors=0.0, at=1_700_000_000.0, slow=10.0, slow_above=3.0)
    assert stable == TargetCounters(requests=900.0, errors=9.0, at=1_700_000_000.0, slow=20.0, slow_above=5.0)
    assert reading.latency == BRACKET
    assert "300ms is not a histogram bucket bound" in reading.detail
    assert reading.queries == ("RQ", "EQ", "TQ", "BQ")
    assert reading.taken_at == AT


def test_a_missing_histogram_bucket_is_partial_not_zero_slow() -> None:
    group = answers({"c": 100.0, "s": 900.0}, buckets={"s": (880.0, 895.0, 900.0)})
    reading = build_reading(REQ, group, BRACKET, {}, AT)
    assert reading.outcome is Outcome.PARTIAL
    assert reading.canary is None
    assert reading.stable is not None
    assert "no latency histogram bucket le=250, le=500, le=+Inf for canary 'c' (query: BQ)" in reading.detail


def test_no_latency_slo_needs_no_buckets_and_counts_no_slow_requests() -> None:
    request = AnalysisRequest(
        key="ns/r", namespace="ns", stable="s", canary="c", interval_seconds=30, latency_bound_seconds=None
    )
    reading = build_reading(request, answers({"c": 5.0, "s": 5.0}), None, {}, AT)
    assert reading.outcome is Outcome.OK
    assert reading.canary is not None
    assert all(c.slow == c.slow_above == 0 for c in reading.canary.values())
    assert reading.latency is None


def test_no_data_partial_and_nan() -> None:
    nothing = build_reading(REQ, answers({"other": 1.0}), BRACKET, {}, AT)
    assert nothing.outcome is Outcome.NO_DATA
    assert (nothing.canary, nothing.stable) == (None, None)
    assert "nor stable 's'" in nothing.detail
    half = build_reading(REQ, answers({"s": 5.0}, buckets={"s": (1.0, 2.0, 5.0)}), BRACKET, {}, AT)
    assert half.outcome is Outcome.PARTIAL
    assert "no envoy_cluster_upstream_rq series for canary 'c' (query: RQ)" in half.detail
    nan = build_reading(
        REQ, answers({"c": math.nan, "s": 1.0}, buckets={"c": (0.0, 0.0, 0.0), "s": (1.0, 1.0, 1.0)}), BRACKET, {}, AT
    )
    assert nan.outcome is Outcome.NAN
    assert nan.canary is None
    assert nan.stable is not None


def test_a_failed_built_in_query_keeps_no_counters_and_names_the_first_failure() -> None:
    group = answers({"c": 1.0, "s": 1.0})
    group.requests = MetricsQueryError("bad", query="RQ")
    group.times = MetricsUnavailable("down")
    reading = build_reading(REQ, group, BRACKET, {}, AT)
    assert reading.outcome is Outcome.QUERY_ERROR
    assert (reading.canary, reading.stable) == (None, None)
    assert "ns/r: requests: bad (query: RQ) (1 more built-in queries failed too)" in reading.detail


def test_unavailable_beats_every_other_outcome() -> None:
    group = answers({"s": 1.0}, buckets={"s": (1.0, 1.0, 1.0)})
    custom = {"m": ("Q", MetricsUnavailable("Prometheus at x did not answer"))}
    reading = build_reading(REQ, group, BRACKET, custom, AT)
    assert reading.outcome is Outcome.UNAVAILABLE  # over PARTIAL
    assert "ns/r: custom metric 'm': Prometheus at x did not answer (query: Q)" in reading.detail
    assert reading.stable is not None  # the counters that were read are kept


def test_custom_values_shapes_and_failures() -> None:
    group = answers({"c": 1.0, "s": 1.0}, buckets={"c": (1.0, 1.0, 1.0), "s": (1.0, 1.0, 1.0)})
    custom = {
        "scalar": ("Q1", [1700000000.0, "2.5"]),
        "vector": ("Q2", [{"metric": {}, "value": [1.0, "3"]}]),
        "none": ("Q3", []),
        "many": ("Q4", [{"metric": {"a": "1"}, "value": [1, "1"]}, {"metric": {"a": "2"}, "value": [1, "1"]}]),
        "nan": ("Q5", [{"metric": {}, "value": [1.0, "NaN"]}]),
    }
    reading = build_reading(REQ, group, BRACKET, custom, AT)
    assert reading.custom == {"scalar": 2.5, "vector": 3.0}
    assert reading.outcome is Outcome.QUERY_ERROR  # "many": aggregate it to one
    assert "custom metric 'none' returned no series (query: Q3)" in reading.detail
    assert "returned 2 series (aggregate it to one)" in reading.detail
    assert "custom metric 'nan' is NaN (query: Q5)" in reading.detail
    assert reading.queries[-5:] == ("Q1", "Q2", "Q3", "Q4", "Q5")
    assert str(custom_value("garbage")).startswith("returned an unexpected result")


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["gw-0", "gw-1"])), max_size=8))
def test_every_target_lands_in_its_backend(pairs: list[tuple[str, str]]) -> None:
    result = [{"metric": {"envoy_cluster_name": b, "instance": i}, "value": [0, "1"]} for b, i in pairs]
    indexed = by_target(result, "envoy_cluster_name")
    assert set(indexed) == {b for b, _ in pairs}
    for backend, targets in indexed.items():
        assert len(targets) == len({i for b, i in pairs if b == backend})
