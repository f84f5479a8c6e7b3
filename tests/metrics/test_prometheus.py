"""PrometheusProvider against a real Prometheus scraping the synthetic Envoy exporter.

Tolerance (stated once): Prometheus' ``increase()`` sees the samples scraped inside the window and
extrapolates them to its edges, so with a 1 s scrape interval and a 10 s window the request, error
and slow counts are compared with the exporter's exact truth over the same window within 15 %
relative, and the error and slow ratios within 0.01 absolute (the non-overlapping edges hold about
a tenth of the requests, so the ratio's sampling error there is ~0.002; 0.01 is about 5 sigma).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from rollout.core.states import ArmCounts, MetricsSample, Outcome
from rollout.errors import MetricsUnavailable
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.prometheus import PrometheusProvider
from rollout.policy.models import CustomMetric, MetricLabels
from rollout.runtime.retrying import RetryPolicy
from rollout.settings import PrometheusSettings
from tests.harness.exporter import TrafficExporter
from tests.harness.prometheus import PrometheusServer, free_port

pytestmark = pytest.mark.prometheus

WINDOW = 10.0
SHORT = 4.0
Factory = Callable[[Sequence[str]], PrometheusServer]


def request(
    key: str, stable: str, canary: str, *, window: float = WINDOW, bound: float | None = 0.25, **extra: Any
) -> AnalysisRequest:
    return AnalysisRequest(
        key=key,
        namespace="default",
        stable=stable,
        canary=canary,
        window_seconds=window,
        interval_seconds=window,
        latency_bound_seconds=bound,
        **extra,
    )


def now() -> datetime:
    return datetime.now(UTC)


def collect_one(provider: PrometheusProvider, req: AnalysisRequest) -> MetricsSample:
    return provider.collect([req], now())[req.key]


@pytest.fixture(scope="module")
def scenario(traffic_exporter: TrafficExporter, prometheus_server: PrometheusServer) -> dict[str, str]:
    """Backends for every test, created at once so that one wait fills all their windows."""
    ex = traffic_exporter
    ex.set_backend("acc-v1", rps=300, error_rate=0.01, latency_median_ms=20, latency_p99_ms=200)
    ex.set_backend("acc-v2", rps=200, error_rate=0.05, client_error_rate=0.03, latency_median_ms=60, latency_p99_ms=900)
    for stem in ("idle", "gone", "reset", "batch", "custom"):
        ex.set_backend(f"{stem}-v1", rps=80, error_rate=0.02)
        ex.set_backend(f"{stem}-v2", rps=40, error_rate=0.02)
    prometheus_server.wait_for('envoy_cluster_upstream_rq{envoy_response_code="503"}', count=12)
    time.sleep(WINDOW + 2)
    return {}


@pytest.fixture
def provider(prometheus_server: PrometheusServer, scenario: dict[str, str]) -> Iterator[PrometheusProvider]:
    p = PrometheusProvider(PrometheusSettings(url=prometheus_server.url))
    yield p
    p.close()


def window_truth(ex: TrafficExporter, backend: str, at: datetime) -> dict[str, float]:
    end, start = ex.truth(at.timestamp())[backend], ex.truth(at.timestamp() - WINDOW)[backend]
    return {
        "requests": end["requests"] - start["requests"],
        "errors": end["errors"] - start["errors"],
        "slow": end["slower_than_ms"]["250"] - start["slower_than_ms"]["250"],
    }


def test_counts_and_ratios_match_the_exporters_truth(
    provider: PrometheusProvider, traffic_exporter: TrafficExporter
) -> None:
    at = now()
    sample = provider.collect([request("default/acc", "acc-v1", "acc-v2")], at)["default/acc"]
    assert sample.outcome is Outcome.OK, sample.detail
    for arm, backend in ((sample.canary, "acc-v2"), (sample.stable, "acc-v1")):
        assert arm is not None
        truth = window_truth(traffic_exporter, backend, at)
        assert arm.requests == pytest.approx(truth["requests"], rel=0.15)
        assert arm.errors == pytest.approx(truth["errors"], rel=0.15, abs=3)
        assert arm.slow == pytest.approx(truth["slow"], rel=0.15, abs=3)
        assert arm.error_ratio == pytest.approx(truth["errors"] / truth["requests"], abs=0.01)
        assert arm.slow_ratio == pytest.approx(truth["slow"] / truth["requests"], abs=0.01)
    # 404s are requests but not errors: the canary's error ratio is its 5xx share only
    assert sample.canary is not None
    assert sample.canary.error_ratio == pytest.approx(0.05, abs=0.02)
    assert sample.queries[0].startswith("sum by (envoy_cluster_name) (increase(envoy_cluster_upstream_rq{")
    assert sample.detail == ""  # 250 ms is an Envoy bucket bound: nothing to explain


def test_a_bound_between_buckets_uses_the_next_bucket_and_says_so(provider: PrometheusProvider) -> None:
    sample = collect_one(provider, request("default/acc", "acc-v1", "acc-v2", bound=0.3))
    assert sample.outcome is Outcome.OK
    assert "300ms is not a histogram bucket bound" in sample.detail
    assert any('le=~"500|500\\\\.0"' in q for q in sample.queries)


def test_a_healthy_backend_without_5xx_series_has_zero_errors(
    provider: PrometheusProvider,
    traffic_exporter: TrafficExporter,
    prometheus_server: PrometheusServer,
    backend_names: Callable[[str], str],
) -> None:
    stable, canary = backend_names("clean"), backend_names("clean")
    traffic_exporter.set_backend(stable, rps=50)
    traffic_exporter.set_backend(canary, rps=50)
    prometheus_server.wait_for(f'envoy_cluster_upstream_rq{{envoy_cluster_name="{canary}"}}')
    time.sleep(2.5)
    sample = collect_one(provider, request("default/clean", stable, canary))
    assert sample.outcome is Outcome.OK, sample.detail
    assert sample.canary is not None
    assert sample.canary.requests > 0
    assert sample.canary.errors == 0


def test_no_series_at_all_and_one_backend_never_seen(provider: PrometheusProvider) -> None:
    none = collect_one(provider, request("default/none", "nobody-v1", "nobody-v2"))
    assert none.outcome is Outcome.NO_DATA
    assert none.canary is None
    assert none.stable is None
    assert "nobody-v2" in none.detail
    half = collect_one(provider, request("default/half", "acc-v1", "nobody-v2"))
    assert half.outcome is Outcome.PARTIAL
    assert half.canary is None  # never filled with zero
    assert half.stable is not None
    assert "no envoy_cluster_upstream_rq series for canary 'nobody-v2'" in half.detail


def test_a_canary_that_stops_receiving_traffic_is_zero_traffic(
    provider: PrometheusProvider, traffic_exporter: TrafficExporter
) -> None:
    traffic_exporter.set_backend("idle-v2", rps=0)
    time.sleep(SHORT + 2)
    sample = collect_one(provider, request("default/idle", "idle-v1", "idle-v2", window=SHORT))
    assert sample.outcome is Outcome.ZERO_TRAFFIC, sample.detail
    assert sample.canary == ArmCounts(requests=0.0, errors=0.0, slow=0.0)
    assert sample.stable is not None
    assert sample.stable.requests > 0


def test_a_backend_that_disappears_is_partial(provider: PrometheusProvider, traffic_exporter: TrafficExporter) -> None:
    assert collect_one(provider, request("default/gone", "gone-v1", "gone-v2")).outcome is Outcome.OK
    traffic_exporter.remove_backend("gone-v2")
    time.sleep(SHORT + 2)
    sample = collect_one(provider, request("default/gone", "gone-v1", "gone-v2", window=SHORT))
    assert sample.outcome is Outcome.PARTIAL
    assert sample.canary is None
    assert "'gone-v2'" in sample.detail


def test_a_counter_reset_inside_the_window(provider: PrometheusProvider, traffic_exporter: TrafficExporter) -> None:
    assert collect_one(provider, request("default/reset", "reset-v1", "reset-v2")).outcome is Outcome.OK
    traffic_exporter.reset_backend("reset-v2")
    time.sleep(2.5)
    sample = collect_one(provider, request("default/reset", "reset-v1", "reset-v2"))
    assert sample.outcome is Outcome.COUNTER_RESET, sample.detail
    assert "canary 'reset-v2': request counters reset" in sample.detail
    assert "resets(envoy_cluster_upstream_rq" in sample.detail


def test_invalid_custom_query_affects_only_its_rollout(provider: PrometheusProvider) -> None:
    good = CustomMetric(
        name="rps", max=1e6, query='sum(rate(envoy_cluster_upstream_rq{{{backend_label}="{backend}"}}[{window}]))'
    )
    bad = CustomMetric(name="broken", max=1, query='sum(rate(envoy_cluster_upstream_rq{{x="{backend}"}}[{window}])')
    nan = CustomMetric(name="ratio", max=1, query="vector(0) / 0")
    many = CustomMetric(name="many", max=1, query="envoy_cluster_upstream_rq")
    batch = [
        request("shop/bad", "custom-v1", "custom-v2", custom=(good, bad)),
        request("shop/good", "custom-v1", "custom-v2", custom=(good,)),
        request("shop/plain", "custom-v1", "custom-v2"),
        request("shop/nan", "custom-v1", "custom-v2", custom=(nan,)),
        request("shop/many", "custom-v1", "custom-v2", custom=(many,)),
    ]
    samples = provider.collect(batch, now())
    bad_sample = samples["shop/bad"]
    assert bad_sample.outcome is Outcome.QUERY_ERROR
    rendered = 'sum(rate(envoy_cluster_upstream_rq{x="custom-v2"}[10s])'
    assert "shop/bad: custom metric 'broken'" in bad_sample.detail
    assert f"(query: {rendered})" in bad_sample.detail
    assert "HTTP 400" in bad_sample.detail
    assert rendered in bad_sample.queries
    assert bad_sample.custom["rps"] > 0  # what could be measured is still reported
    assert samples["shop/good"].outcome is Outcome.OK
    assert samples["shop/good"].custom["rps"] == pytest.approx(40, rel=0.2)
    assert samples["shop/plain"].outcome is Outcome.OK
    assert samples["shop/nan"].outcome is Outcome.NAN
    assert "'ratio' is NaN" in samples["shop/nan"].detail
    assert samples["shop/many"].outcome is Outcome.QUERY_ERROR
    assert "aggregate it to one" in samples["shop/many"].detail


def test_a_bad_selector_is_a_query_error_for_its_group_only(provider: PrometheusProvider) -> None:
    broken = request("default/sel", "acc-v1", "acc-v2", labels=MetricLabels(selector='zone=~"("'))
    samples = provider.collect([broken, request("default/acc", "acc-v1", "acc-v2")], now())
    assert samples["default/sel"].outcome is Outcome.QUERY_ERROR
    assert "default/sel: requests:" in samples["default/sel"].detail
    assert 'zone=~"("' in samples["default/sel"].detail
    assert samples["default/acc"].outcome is Outcome.OK


def test_batching_sends_one_query_per_metric_per_tick(
    provider: PrometheusProvider, prometheus_server: PrometheusServer
) -> None:
    same = CustomMetric(name="total", max=1e9, query="sum(rate(envoy_cluster_upstream_rq[{window}]))")
    batch = [request(f"default/b{i}", "batch-v1", "batch-v2", custom=(same,)) for i in range(20)]
    batch += [request(f"default/o{i}", f"other{i}-v1", f"other{i}-v2") for i in range(20)]
    before = prometheus_server.engine_queries()
    samples = provider.collect(batch, now())
    sent = prometheus_server.engine_queries() - before
    # requests, errors, resets, slow (one latency bound) + the shared custom query, for 40 rollouts
    assert provider.last_tick_queries == 5
    assert sent == 5
    assert all(samples[f"default/b{i}"].outcome is Outcome.OK for i in range(20))
    assert all(samples[f"default/o{i}"].outcome is Outcome.NO_DATA for i in range(20))
    # a second window and a second latency bound add their own queries, nothing per rollout
    batch += [
        request("default/w", "batch-v1", "batch-v2", window=5),
        request("default/l", "batch-v1", "batch-v2", bound=1.0),
    ]
    provider.collect(batch, now())
    assert provider.last_tick_queries == 5 + 4 + 1


def test_a_policy_address_override_is_honoured(provider: PrometheusProvider) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    samples = provider.collect(
        [request("default/elsewhere", "acc-v1", "acc-v2", address=dead), request("default/acc", "acc-v1", "acc-v2")],
        now(),
    )
    assert samples["default/elsewhere"].outcome is Outcome.UNAVAILABLE
    assert dead in samples["default/elsewhere"].detail
    assert "Connection refused" in samples["default/elsewhere"].detail
    assert samples["default/acc"].outcome is Outcome.OK


def test_prometheus_stopped_mid_test_is_unavailable_then_recovers(
    traffic_exporter: TrafficExporter, prometheus_factory: Factory, scenario: dict[str, str]
) -> None:
    server = prometheus_factory([traffic_exporter.address])
    server.wait_for('envoy_cluster_upstream_rq{envoy_cluster_name="acc-v2"}')
    time.sleep(3)
    retries = RetryPolicy("test", (MetricsUnavailable,), attempts=3, deadline_seconds=2, initial_delay=0.05)
    provider = PrometheusProvider(PrometheusSettings(url=server.url, timeout_seconds=2), call=retries.call)
    req = request("default/acc", "acc-v1", "acc-v2", window=3)
    try:
        assert collect_one(provider, req).outcome is Outcome.OK
        server.stop()
        down = collect_one(provider, req)
        assert down.outcome is Outcome.UNAVAILABLE
        assert down.canary is None
        assert "is unreachable: [Errno 111] Connection refused" in down.detail
        # the first query is retried by the runtime's policy (3 attempts); the tick's other queries
        # to the same dead server are not sent at all, so a tick stays short while it is down
        assert provider.last_tick_queries == 3
        server.start()
        deadline = time.monotonic() + 30
        outcome = collect_one(provider, req).outcome
        while outcome is not Outcome.OK and time.monotonic() < deadline:
            time.sleep(0.5)
            outcome = collect_one(provider, req).outcome
        assert outcome is Outcome.OK
    finally:
        provider.close()
