"""What PrometheusProvider sends, and how it reads answers a real Prometheus does not give, against
loopback listeners that record every request: credentials reach only their own endpoint, header
injection is refused, a proxy's pages and hangs are typed, and nothing is retried behind the
runtime's back."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from rollout.core.readings import Outcome
from rollout.errors import MetricsUnavailable, SettingsError
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.prometheus import PrometheusProvider
from rollout.runtime.retrying import RetryPolicy
from rollout.settings import PrometheusSettings
from tests.harness.prometheus import free_port
from tests.harness.recorder import Answer, RecordingServer

AT = datetime(2026, 1, 1, tzinfo=UTC)
PROMETHEUS_TIMEOUT = json.dumps(
    {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
)


def request(key: str = "ns/r", **extra: Any) -> AnalysisRequest:
    return AnalysisRequest(
        key=key, namespace="ns", stable="s", canary="c", interval_seconds=30, latency_bound_seconds=None, **extra
    )


@pytest.fixture
def endpoint() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


def provider(url: str, **settings: Any) -> PrometheusProvider:
    return PrometheusProvider({"default": PrometheusSettings(url=url, **settings)})


def test_the_endpoints_bearer_token_and_headers_go_only_to_its_own_url(
    endpoint: RecordingServer, elsewhere: RecordingServer
) -> None:
    p = provider(endpoint.url, bearer_token=SecretStr("endpoint-secret"), headers={"X-Api-Key": "ops-key"})
    batch = [
        request("ns/endpoint", headers={"X-Scope-OrgID": "shop"}),
        request("ns/address", address=elsewhere.url, headers={"X-Scope-OrgID": "shop"}),
        request("ns/token", address=elsewhere.url + "/", bearer_token="policy-token"),
    ]
    readings = p.collect(batch, AT)
    assert all(r.outcome is Outcome.NO_DATA for r in readings.values())  # both answered: empty vectors
    assert endpoint.requests
    for sent in endpoint.requests:
        assert sent.headers["authorization"] == "Bearer endpoint-secret"
        assert sent.headers["x-api-key"] == "ops-key"
        assert sent.headers["x-scope-orgid"] == "shop"
        assert sent.params["time"] == [f"{AT.timestamp():.3f}"]
    assert elsewhere.requests
    for sent in elsewhere.requests:
        assert "x-api-key" not in sent.headers
        assert sent.headers.get("authorization") in (None, "Bearer policy-token")
        assert "endpoint-secret" not in json.dumps(sent.headers)
    by_token = {s.headers.get("authorization") for s in elsewhere.requests}
    assert by_token == {None, "Bearer policy-token"}  # two identities, two connections
    p.close()


def test_basic_auth_goes_only_to_the_endpoint(endpoint: RecordingServer, elsewhere: RecordingServer) -> None:
    p = provider(endpoint.url, username="reader", password=SecretStr("pw"))
    p.collect([request("ns/a"), request("ns/b", address=elsewhere.url)], AT)
    expected = "Basic " + base64.b64encode(b"reader:pw").decode()
    assert {s.headers["authorization"] for s in endpoint.requests} == {expected}
    assert all("authorization" not in s.headers for s in elsewhere.requests)


def test_a_policy_header_cannot_replace_the_endpoints_credentials(endpoint: RecordingServer) -> None:
    p = provider(endpoint.url, bearer_token=SecretStr("endpoint-secret"))
    p.collect([request(headers={"Authorization": "Bearer forged"})], AT)
    assert {s.headers["authorization"] for s in endpoint.requests} == {"Bearer endpoint-secret"}


def test_header_injection_is_refused_for_that_rollout_only(endpoint: RecordingServer) -> None:
    p = provider(endpoint.url)
    readings = p.collect(
        [
            request("ns/bad", headers={"X-Scope-OrgID": "shop\r\nAuthorization: Bearer stolen"}),
            request("ns/token", address=endpoint.url, bearer_token="tok\nX: y"),
            request("ns/good"),
        ],
        AT,
    )
    assert readings["ns/bad"].outcome is Outcome.QUERY_ERROR
    assert "header 'X-Scope-OrgID' contains a CR or LF character" in readings["ns/bad"].detail
    assert "stolen" not in readings["ns/bad"].detail
    assert readings["ns/token"].outcome is Outcome.QUERY_ERROR
    assert "bearer token" in readings["ns/token"].detail
    assert readings["ns/good"].outcome is Outcome.NO_DATA
    assert all("stolen" not in json.dumps(s.headers) for s in endpoint.requests)
    with pytest.raises(SettingsError, match=r"endpoint 'default'.*'X-Api-Key' contains a CR or LF"):
        provider(endpoint.url, headers={"X-Api-Key": "a\r\nb"})


def test_an_unknown_endpoint_is_a_query_error_for_its_rollout_only(endpoint: RecordingServer) -> None:
    readings = provider(endpoint.url).collect([request("ns/eu", endpoint="eu"), request("ns/ok")], AT)
    assert readings["ns/eu"].outcome is Outcome.QUERY_ERROR
    assert "Prometheus endpoint 'eu' is not configured in the daemon (known: default)" in readings["ns/eu"].detail
    assert readings["ns/ok"].outcome is Outcome.NO_DATA


@pytest.mark.parametrize(
    ("answer", "outcome", "words", "server_down"),
    [
        (Answer(502, "<html>Bad Gateway</html>", "text/html"), Outcome.UNAVAILABLE, "HTTP 502", True),
        (Answer(200, "<html>login</html>", "text/html"), Outcome.UNAVAILABLE, "not Prometheus' JSON", True),
        (Answer(200, '{"status": "success"}'), Outcome.UNAVAILABLE, "without data.result", True),
        (Answer(401, "Unauthorized", "text/plain"), Outcome.QUERY_ERROR, "HTTP 401", False),
        (Answer(503, PROMETHEUS_TIMEOUT), Outcome.UNAVAILABLE, "HTTP 503 timeout: query timed out", False),
    ],
)
def test_answers_a_prometheus_would_not_give_are_typed(
    endpoint: RecordingServer, answer: Answer, outcome: Outcome, words: str, server_down: bool
) -> None:
    endpoint.answer = answer
    p = provider(endpoint.url)
    reading = p.collect([request()], AT)["ns/r"]
    assert reading.outcome is outcome
    assert words in reading.detail
    assert endpoint.url in reading.detail
    # a server that did not answer as Prometheus is not asked again this tick; a query-level
    # answer (Prometheus' own 503, a 401) does not stop the tick's other queries
    assert p.last_tick_queries == len(endpoint.requests) == (1 if server_down else 3)


def test_a_hang_is_unavailable_after_the_timeout(endpoint: RecordingServer) -> None:
    endpoint.answer = Answer(delay_seconds=2.0)
    reading = provider(endpoint.url, timeout_seconds=0.3).collect([request()], AT)["ns/r"]
    assert reading.outcome is Outcome.UNAVAILABLE
    assert "did not answer within 0.3s" in reading.detail


def test_the_library_never_retries_and_the_runtimes_policy_does(endpoint: RecordingServer) -> None:
    endpoint.answer = Answer(503, "<html>Service Unavailable</html>", "text/html")
    p = provider(endpoint.url)
    p.collect([request()], AT)
    assert len(endpoint.requests) == 1  # prometheus-api-client's default adapter would have sent 4
    retries = RetryPolicy("test", (MetricsUnavailable,), attempts=3, deadline_seconds=5, initial_delay=0.01)
    dead = PrometheusProvider({"default": PrometheusSettings(url=f"http://127.0.0.1:{free_port()}")}, call=retries.call)
    reading = dead.collect([request("ns/a"), request("ns/b")], AT)["ns/a"]
    assert reading.outcome is Outcome.UNAVAILABLE
    assert "is unreachable: [Errno 111] Connection refused" in reading.detail
    assert dead.last_tick_queries == 3  # the first query's 3 attempts, then nothing more this tick
