"""Rendering of the built-in Envoy queries and of custom metric templates (pure, no Prometheus)."""

from __future__ import annotations

import pytest

from rollout.metrics.queries import (
    ENVOY_DEFAULT_BUCKETS_MS,
    Scope,
    backend_value,
    choose_bucket,
    duration,
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


def test_choose_bucket_exact_bound() -> None:
    choice = choose_bucket(0.25, ENVOY_DEFAULT_BUCKETS_MS)
    assert choice is not None
    assert choice.le_ms == 250
    assert choice.exact
    assert "not a histogram bucket" not in choice.describe()


def test_choose_bucket_between_bounds_takes_the_next_bucket_up_and_says_so() -> None:
    choice = choose_bucket(0.3, ENVOY_DEFAULT_BUCKETS_MS)
    assert choice is not None
    assert choice.le_ms == 500
    assert not choice.exact
    assert "300ms is not a histogram bucket bound" in choice.describe()
    assert "le=500ms" in choice.describe()


def test_choose_bucket_above_every_bucket() -> None:
    assert choose_bucket(7200.0, ENVOY_DEFAULT_BUCKETS_MS) is None


def test_scope_renders_batched_queries_grouped_by_the_backend_label() -> None:
    scope = Scope(labels=MetricLabels(selector='namespace="prod"'), window_seconds=30, values=("a.v1", "a.v2"))
    assert scope.requests() == (
        "sum by (envoy_cluster_name) (increase(envoy_cluster_upstream_rq"
        '{namespace="prod", envoy_cluster_name=~"a\\\\.v1|a\\\\.v2"}[30s]))'
    )
    assert 'envoy_response_code=~"5.."' in scope.errors()
    assert scope.resets().startswith("sum by (envoy_cluster_name) (resets(envoy_cluster_upstream_rq{")
    slow = scope.slow(choose_bucket(0.25, ENVOY_DEFAULT_BUCKETS_MS))  # type: ignore[arg-type]
    assert 'le="+Inf"' in slow
    assert 'le=~"250|250\\\\.0"' in slow
    assert " - " in slow


def test_scope_uses_a_custom_backend_label() -> None:
    scope = Scope(labels=MetricLabels(backend="virtual_node"), window_seconds=60, values=("x",))
    assert scope.requests() == ('sum by (virtual_node) (increase(envoy_cluster_upstream_rq{virtual_node=~"x"}[60s]))')


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
