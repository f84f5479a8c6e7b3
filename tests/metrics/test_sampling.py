"""The outcome rules of ``rollout.metrics.sampling`` on hand-made query results (pure)."""

from __future__ import annotations

import math

from rollout.core.states import ArmCounts, Outcome
from rollout.errors import MetricsQueryError, MetricsUnavailable
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.queries import BucketChoice
from rollout.metrics.sampling import GroupResults, build_sample, custom_value

REQ = AnalysisRequest(
    key="ns/r",
    namespace="ns",
    stable="s",
    canary="c",
    window_seconds=30,
    interval_seconds=30,
    latency_bound_seconds=0.25,
)


def group(requests: object, errors: object = None, resets: object = None, slow: object = None) -> GroupResults:
    g = GroupResults(requests_query="RQ", errors_query="EQ", resets_query="ZQ")
    g.requests = requests  # type: ignore[assignment]
    g.errors = {} if errors is None else errors  # type: ignore[assignment]
    g.resets = {} if resets is None else resets  # type: ignore[assignment]
    g.slow[0.25] = (BucketChoice(250, 250), "SQ", {} if slow is None else slow)  # type: ignore[assignment]
    return g


def test_ok_and_absent_5xx_series_means_zero_errors() -> None:
    sample = build_sample(
        REQ, group({"c": 100.0, "s": 900.0}, {"s": 9.0}, {"c": 0.0, "s": 0.0}, {"c": 2.0, "s": 5.0}), {}, {}
    )
    assert sample.outcome is Outcome.OK
    assert sample.canary == ArmCounts(100.0, 0.0, 2.0)
    assert sample.stable == ArmCounts(900.0, 9.0, 5.0)
    assert sample.queries == ("RQ", "EQ", "ZQ", "SQ")


def test_a_missing_histogram_bucket_is_partial_not_zero_slow() -> None:
    sample = build_sample(REQ, group({"c": 100.0, "s": 900.0}, slow={"s": 5.0}), {}, {})
    assert sample.outcome is Outcome.PARTIAL
    assert sample.canary is None
    assert "no latency histogram bucket le=250 for canary 'c'" in sample.detail


def test_nan_and_zero_traffic_and_precedence() -> None:
    nan = build_sample(REQ, group({"c": math.nan, "s": 1.0}, slow={"c": 0.0, "s": 0.0}), {}, {})
    assert nan.outcome is Outcome.NAN
    zero = build_sample(REQ, group({"c": 0.0, "s": 10.0}, slow={"c": 0.0, "s": 0.0}), {}, {})
    assert zero.outcome is Outcome.ZERO_TRAFFIC
    reset_and_partial = build_sample(REQ, group({"c": 5.0}, resets={"c": 1.0}, slow={"c": 0.0}), {}, {})
    assert reset_and_partial.outcome is Outcome.PARTIAL
    assert "reset 1 time(s)" in reset_and_partial.detail


def test_unavailable_beats_query_error_and_keeps_no_counts() -> None:
    g = group(MetricsQueryError("bad", query="RQ"), MetricsUnavailable("down"))
    sample = build_sample(REQ, g, {}, {})
    assert sample.outcome is Outcome.QUERY_ERROR  # the first failed query is reported
    assert sample.canary is None
    assert "(1 more built-in queries failed too)" in sample.detail
    custom = build_sample(
        REQ, group({"c": 1.0, "s": 1.0}, slow={"c": 0.0, "s": 0.0}), {"m": MetricsUnavailable("down")}, {"m": "Q"}
    )
    assert custom.outcome is Outcome.UNAVAILABLE
    assert "ns/r: custom metric 'm': down" in custom.detail


def test_custom_value_shapes() -> None:
    assert custom_value([1700000000.0, "2.5"]) == 2.5
    assert custom_value([{"metric": {}, "value": [1.0, "3"]}]) == 3.0
    assert custom_value([]) == "returned no series"
    assert "returned 2 series" in str(custom_value([{"metric": {"a": "1"}}, {"metric": {"a": "2"}}]))
