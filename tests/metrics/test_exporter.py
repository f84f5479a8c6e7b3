"""The synthetic Envoy exporter: determinism, Envoy-like series, truth, and its HTTP control API."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness.exporter import TrafficExporter


@pytest.fixture
def exporter() -> Iterator[TrafficExporter]:
    with TrafficExporter(seed=3, auto=False) as ex:
        yield ex


def call(ex: TrafficExporter, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{ex.address}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        raw = r.read().decode()
    return raw if path == "/metrics" else json.loads(raw)


def test_same_seed_same_traffic() -> None:
    truths = []
    for _ in range(2):
        ex = TrafficExporter(seed=11, auto=False)
        ex.set_backend("a", rps=1000, error_rate=0.1, latency_median_ms=30, latency_p99_ms=400)
        ex.advance(2.0)
        truths.append(ex.truth())
        ex.stop()
    assert truths[0] == truths[1]
    assert truths[0]["a"]["requests"] == 2000
    assert 150 < truths[0]["a"]["errors"] < 250
    assert 5 < truths[0]["a"]["slower_than_ms"]["250"] < 60  # ~1.5% slower than 250 ms at p99=400


def test_series_look_like_envoy(exporter: TrafficExporter) -> None:
    exporter.set_backend("svc", rps=100)
    exporter.advance(1.0)
    text = exporter.render()
    assert 'envoy_cluster_upstream_rq{envoy_cluster_name="svc",envoy_response_code="200"} 100' in text
    assert "503" not in text  # like Envoy: no series for a code never seen
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="svc",le="0.5"}' in text
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="svc",le="3600000"} 100' in text
    assert 'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="svc"} 100' in text
    exporter.set_backend("svc", error_rate=1.0)
    exporter.advance(0.5)
    assert 'envoy_response_code="503"} 50' in exporter.render()


def test_http_control_reset_remove_and_truth(exporter: TrafficExporter) -> None:
    assert call(exporter, "PUT", "/backends/x", {"rps": 10, "error_rate": 0.5})["rps"] == 10
    call(exporter, "POST", "/advance", {"seconds": 3})
    assert call(exporter, "GET", "/truth")["x"]["requests"] == 30
    assert call(exporter, "GET", "/backends")["x"]["error_rate"] == 0.5
    call(exporter, "POST", "/backends/x/reset")
    assert call(exporter, "GET", "/truth")["x"]["requests"] == 0
    assert 'envoy_cluster_name="x",envoy_response_code' not in call(exporter, "GET", "/metrics")
    call(exporter, "DELETE", "/backends/x")
    assert "x" not in call(exporter, "GET", "/truth")
    assert 'envoy_cluster_name="x"' not in call(exporter, "GET", "/metrics")


def test_http_control_rejects_bad_profiles(exporter: TrafficExporter) -> None:
    for body in ({"rps": -1}, {"colour": "red"}, {"error_rate": 0.8, "client_error_rate": 0.5}):
        with pytest.raises(urllib.error.HTTPError) as info:
            call(exporter, "PUT", "/backends/y", body)
        assert info.value.code == 400
