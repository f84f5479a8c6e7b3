"""PrometheusProvider against a real Prometheus *scraping* the synthetic Envoy exporter every second
(the backfilled contract suite and accuracy matrix cover everything that needs no live scrape).

Exactness is checked against what the exporter actually served each scrape (``served``): the
difference of two readings must equal it to the request, no tolerance.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollout.core.readings import Outcome, Reading, difference
from rollout.errors import MetricsUnavailable
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.prometheus import PrometheusProvider
from rollout.policy.models import CustomMetric, MetricLabels
from rollout.runtime.retrying import RetryPolicy
from rollout.settings import PrometheusSettings
from tests.harness.exporter import TrafficExporter
from tests.harness.prometheus import PrometheusServer

pytestmark = pytest.mark.prometheus

LAG = timedelta(seconds=1.5)  # read a little in the past: every sample up to `at` is ingested
Factory = Callable[[Sequence[str]], PrometheusServer]


def request(key: str, stable: str, canary: str, *, bound: float | None = 0.25, **extra: Any) -> AnalysisRequest:
    return AnalysisRequest(
        key=key,
        namespace="default",
        stable=stable,
        canary=canary,
        interval_seconds=5,
        latency_bound_seconds=bound,
        **extra,
    )


def read(provider: PrometheusProvider, req: AnalysisRequest) -> Reading:
    return provider.collect([req], datetime.now(UTC) - LAG)[req.key]


@pytest.fixture(scope="module")
def scenario(traffic_exporter: TrafficExporter, prometheus_server: PrometheusServer) -> None:
    """Backends for every test, created at once so that one wait serves them all."""
    ex = traffic_exporter
    ex.set_backend("live-v1", rps=300, error_rate=0.01, latency_median_ms=20, latency_p99_ms=200)
    ex.set_backend(
        "live-v2", rps=200, error_rate=0.05, client_error_rate=0.03, latency_median_ms=60, latency_p99_ms=900
    )
    for stem in ("gone", "reset"):
        ex.set_backend(f"{stem}-v1", rps=80, error_rate=0.2)
        ex.set_backend(f"{stem}-v2", rps=40, error_rate=0.2)
    prometheus_server.wait_for('envoy_cluster_upstream_rq{envoy_response_code="503"}', count=6)
    time.sleep(2.5)


@pytest.fixture
def provider(prometheus_server: PrometheusServer, scenario: None) -> Iterator[PrometheusProvider]:
    p = PrometheusProvider({"default": PrometheusSettings(url=prometheus_server.url)})
    yield p
    p.close()


def test_live_differences_are_exactly_what_the_exporter_served(
    provider: PrometheusProvider, traffic_exporter: TrafficExporter
) -> None:
    req = request("default/live", "live-v1", "live-v2")
    readings = []
    for _ in range(4):
        readings.append(read(provider, req))
        time.sleep(1.3)
    for before, after in itertools.pairwise(readings):
        assert after.outcome is Outcome.OK, after.detail
        interval = difference(before, after)
        assert interval is not None
        for arm, backend, old, new in (
            (interval.canary, "live-v2", before.canary, after.canary),
            (interval.stable, "live-v1", before.stable, after.stable),
        ):
            assert old is not None
            assert new is not None
            ((_, start),), ((_, end),) = old.items(), new.items()  # one scrape target: the exporter
            served_then, served_now = (
                traffic_exporter.served(start.at)[backend],
                traffic_exporter.served(end.at)[backend],
            )
            assert arm.requests == served_now["requests"] - served_then["requests"]
            assert arm.errors == served_now["errors"] - served_then["errors"]  # 5xx only, 404s are not errors
            slow = served_now["slower_than_ms"]["250"] - served_then["slower_than_ms"]["250"]
            assert arm.slow == arm.slow_above == slow
    assert readings[0].queries[0] == (
        'sum without (envoy_response_code) (envoy_cluster_upstream_rq{envoy_cluster_name=~"live-v1|live-v2"})'
    )


def test_bad_promql_and_execution_errors_are_query_errors_for_their_rollout_only(provider: PrometheusProvider) -> None:
    duplicate = CustomMetric(
        name="dup",
        max=1,
        query='{{__name__=~"envoy_cluster_upstream_rq_time_(sum|count)", {backend_label}="{backend}"}} * 1',
    )
    batch = [
        request("default/selector", "live-v1", "live-v2", labels=MetricLabels(selector='zone=~"("')),
        request("default/dup", "live-v1", "live-v2", custom=(duplicate,)),
        request("default/fine", "live-v1", "live-v2"),
    ]
    readings = provider.collect(batch, datetime.now(UTC) - LAG)
    selector = readings["default/selector"]
    assert selector.outcome is Outcome.QUERY_ERROR
    assert "default/selector: requests: Prometheus at" in selector.detail
    assert "answered HTTP 400 bad_data" in selector.detail
    assert 'zone=~"("' in selector.detail
    dup = readings["default/dup"]
    assert dup.outcome is Outcome.QUERY_ERROR
    assert "default/dup: custom metric 'dup'" in dup.detail
    assert "HTTP 422 execution" in dup.detail
    assert dup.canary is not None  # its counters were read
    assert readings["default/fine"].outcome is Outcome.OK


def test_a_live_restart_is_counted_from_zero(provider: PrometheusProvider, traffic_exporter: TrafficExporter) -> None:
    req = request("default/reset", "reset-v1", "reset-v2")
    before = read(provider, req)
    traffic_exporter.reset_backend("reset-v2")
    reset_at = time.time()
    # a reading LAG in the past sees the restart once a scrape after it is ingested: with a 1 s
    # scrape that is up to 1 s + LAG after the reset, so wait for it rather than a fixed time
    deadline = time.monotonic() + 15
    while True:
        time.sleep(0.5)
        after = read(provider, req)
        if after.canary and all(c.at > reset_at for c in after.canary.values()):
            break
        assert time.monotonic() < deadline, "no scrape after the restart within 15 s"
    interval = difference(before, after)
    assert interval is not None
    assert interval.resets == 1
    assert after.canary is not None
    ((_, end),) = after.canary.items()
    assert interval.canary.requests == traffic_exporter.served(end.at)["reset-v2"]["requests"]


def test_a_backend_that_disappears_is_partial_at_the_next_scrape(
    provider: PrometheusProvider, traffic_exporter: TrafficExporter
) -> None:
    req = request("default/gone", "gone-v1", "gone-v2")
    assert read(provider, req).outcome is Outcome.OK
    traffic_exporter.remove_backend("gone-v2")
    time.sleep(2.5)  # a scrape without its series marks them stale at once
    gone = read(provider, req)
    assert gone.outcome is Outcome.PARTIAL
    assert gone.canary is None
    assert "'gone-v2'" in gone.detail


def test_prometheus_stopped_mid_run_is_unavailable_then_nothing_is_lost(prometheus_factory: Factory) -> None:
    exporter = TrafficExporter(seed=9).start()  # its own, so that `served` sees only this server's scrapes
    exporter.set_backend("out-v1", rps=100)
    exporter.set_backend("out-v2", rps=50)
    server = prometheus_factory([exporter.address])
    server.wait_for('envoy_cluster_upstream_rq{envoy_cluster_name="out-v2"}')
    time.sleep(2)
    retries = RetryPolicy("test", (MetricsUnavailable,), attempts=3, deadline_seconds=2, initial_delay=0.05)
    provider = PrometheusProvider({"default": PrometheusSettings(url=server.url, timeout_seconds=2)}, call=retries.call)
    req = request("default/out", "out-v1", "out-v2")
    try:
        before = read(provider, req)
        assert before.outcome is Outcome.OK, before.detail
        server.stop()
        down = read(provider, req)
        assert down.outcome is Outcome.UNAVAILABLE
        assert down.canary is None
        assert "is unreachable: [Errno 111] Connection refused" in down.detail
        assert provider.last_tick_queries == 3  # one query's 3 attempts; the tick's others are not sent
        server.start()
        deadline = time.monotonic() + 30
        after = read(provider, req)
        while (
            after.outcome is not Outcome.OK or after.sampled_at == before.sampled_at
        ) and time.monotonic() < deadline:
            time.sleep(0.5)
            after = read(provider, req)
        assert after.outcome is Outcome.OK
        interval = difference(before, after)  # the readings on both sides of the outage cover it
        assert interval is not None
        assert after.canary is not None
        assert before.canary is not None
        ((_, start),), ((_, end),) = before.canary.items(), after.canary.items()
        served = exporter.served(end.at)["out-v2"]["requests"] - exporter.served(start.at)["out-v2"]["requests"]
        assert interval.canary.requests == served
    finally:
        provider.close()
        exporter.stop()
