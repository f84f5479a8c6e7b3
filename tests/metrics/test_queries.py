"""Rendering of the built-in Envoy queries and of custom metric templates (pure, no Prometheus)."""

from __future__ import annotations

import pytest

from rollout.core.readings import LatencyBuckets
from rollout.metrics.queries import (
    ENVOY_DEFAULT_BUCKETS_MS,
    Scope,
    backend_value,
    describe_buckets,
    duration,
    latency_buckets,
    le_values,
    regex_literal,
    render_custom,
    string_literal,
)
from rollout.policy.models import CustomMetric, MetricLabels


@pytest.mark.parametrize(("seconds", "text"), [(30, "30s"), (30.0, "30s"), (1.5, "1500ms"), (600, "600s")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_duration_rejects_non_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        duration(0)


def test_regex_and_string_literals_escape_what_promql_and_re2_need() -> None:
    assert regex_literal("svc.v1+x") == r"svc\.v1\+x"
    assert string_literal(r'a"b\c') == r'"a\"b\\c"'
    assert string_literal(regex_literal("a.b")) == r'"a\\.b"'


def test_backend_value_template() -> None:
    labels = MetricLabels(backend_value="cds_egress_mesh_{backend}_http_8080")
    assert backend_value(labels, "reco-v2") == "cds_egress_mesh_reco-v2_http_8080"
    assert backend_value(MetricLabels(), "reco-v2") == "reco-v2"


def test_le_values_cover_envoy_python_and_go_spellings() -> None:
    assert {"500", "500.0"} <= set(le_values(500))
    assert "0.5" in le_values(0.5)
    assert {"3600000", "3.6e+06"} <= set(le_values(3600000))


def test_latency_buckets_at_a_bucket_bound_are_exact() -> None:
    buckets = latency_buckets(0.25, ENVOY_DEFAULT_BUCKETS_MS)
    assert buckets == LatencyBuckets(bound_ms=250, below_ms=250, above_ms=250)
    assert buckets.exact
    assert "not a histogram bucket" not in describe_buckets(buckets)


def test_latency_buckets_between_bounds_bracket_the_bound_and_say_so() -> None:
    buckets = latency_buckets(0.3, ENVOY_DEFAULT_BUCKETS_MS)
    assert buckets == LatencyBuckets(bound_ms=300, below_ms=250, above_ms=500)
    assert not buckets.exact
    text = describe_buckets(buckets)
    assert "300ms is not a histogram bucket bound" in text
    assert "slow = slower than 250ms" in text
    assert "slow_above = slower than 500ms" in text


def test_latency_buckets_outside_every_bucket() -> None:
    above_all = latency_buckets(7200.0, ENVOY_DEFAULT_BUCKETS_MS)
    assert (above_all.below_ms, above_all.above_ms) == (3600000, None)
    assert "nothing is known to be slower" in describe_buckets(above_all)
    below_all = latency_buckets(0.0001, ENVOY_DEFAULT_BUCKETS_MS)
    assert (below_all.below_ms, below_all.above_ms) == (None, 0.5)
    assert "slow = every request" in describe_buckets(below_all)


def test_scope_reads_cumulative_counters_per_target_at_one_instant() -> None:
    scope = Scope(labels=MetricLabels(selector='namespace="prod"'), values=("a.v1", "a.v2"))
    matchers = '{namespace="prod", envoy_cluster_name=~"a\\\\.v1|a\\\\.v2"}'
    assert scope.requests() == f"sum without (envoy_response_code) (envoy_cluster_upstream_rq{matchers})"
    assert scope.errors() == (
        "sum without (envoy_response_code) (envoy_cluster_upstream_rq"
        '{namespace="prod", envoy_cluster_name=~"a\\\\.v1|a\\\\.v2", envoy_response_code=~"5.."})'
    )
    assert scope.sample_times() == (
        f"max without (envoy_response_code) (timestamp(envoy_cluster_upstream_rq{matchers}))"
    )
    assert "increase(" not in scope.requests() + scope.errors()


def test_scope_buckets_ask_every_spelling_of_every_bound_and_inf_in_one_query() -> None:
    scope = Scope(labels=MetricLabels(), values=("x",))
    assert scope.buckets([250.0, 500.0]) == (
        'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"x", le=~"250|250\\\\.0|500|500\\\\.0|\\\\+Inf"}'
    )


def test_scope_uses_a_custom_backend_label() -> None:
    scope = Scope(labels=MetricLabels(backend="virtual_node"), values=("x",))
    assert scope.requests() == 'sum without (envoy_response_code) (envoy_cluster_upstream_rq{virtual_node=~"x"})'


def test_render_custom_fills_every_documented_variable() -> None:
    metric = CustomMetric(
        name="p",
        query='sum(rate(m{{{backend_label}="{backend}",ns="{namespace}",{selector}}}[{window}])) / {interval}',
        max=1,
    )
    rendered = render_custom(
        metric,
        namespace="shop",
        backend="reco-v2",
        labels=MetricLabels(selector='zone="a"'),
        window_seconds=60,
        interval_seconds=30,
    )
    assert rendered == 'sum(rate(m{envoy_cluster_name="reco-v2",ns="shop",zone="a"}[60s])) / 30s'


def test_render_custom_reports_an_unfillable_template() -> None:
    # validation refuses `{0}` now (rollout.policy.templates); build the metric unvalidated to reach the renderer
    metric = CustomMetric.model_construct(name="bad", query='sum(m{{x="{0}"}})', min=None, max=1.0)
    with pytest.raises(ValueError, match="custom metric 'bad'"):
        render_custom(metric, namespace="n", backend="b", labels=MetricLabels(), window_seconds=1, interval_seconds=1)
