"""PrometheusProvider: the MetricsProvider that asks a real Prometheus (``prometheus-api-client``).

Owns the HTTP side of metrics: clients per (address, headers), translating library errors into
``MetricsUnavailable``/``MetricsQueryError``, batching built-in queries across the rollouts of a
tick, caching results within the tick, and turning results into honest ``MetricsSample`` outcomes.
Every query is attempted once through ``call`` (the runtime passes ``METRICS_READS.call`` to retry
unavailability); this module never retries on its own and never fills missing data with zero.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from rollout.core.states import MetricsSample
from rollout.errors import MetricsError, MetricsQueryError, MetricsUnavailable
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.queries import (
    ENVOY_DEFAULT_BUCKETS_MS,
    Scope,
    backend_value,
    choose_bucket,
    render_custom,
)
from rollout.metrics.sampling import GroupResults, build_sample, error_sample
from rollout.settings import PrometheusSettings

T = TypeVar("T")


class Caller(Protocol):
    """Runs one attempt-function; the runtime passes ``METRICS_READS.call`` to retry it."""

    def __call__(self, fn: Callable[[], T], /) -> T: ...


def _once(fn: Callable[[], T], /) -> T:
    return fn()


Vector = dict[str, float]
"""A query result: backend label value -> value (one series per backend after ``sum by``)."""

_STATUS = re.compile(r"HTTP Status Code (\d{3})")
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+|timed out|Read timed out")


@dataclass(frozen=True)
class _GroupKey:
    address: str
    headers: tuple[tuple[str, str], ...]
    backend_label: str
    selector: str
    window_seconds: float


@dataclass
class _Tick:
    """Everything fetched during one ``collect``: results and errors, keyed by endpoint and query."""

    at: datetime
    results: dict[tuple[str, tuple[tuple[str, str], ...], str], Any] = field(default_factory=dict)
    unreachable: dict[str, MetricsUnavailable] = field(default_factory=dict)  # address -> why, this tick
    sent: int = 0


class PrometheusProvider:
    """Measures canary and stable of many rollouts with a constant number of queries per tick."""

    def __init__(self, settings: PrometheusSettings | None = None, *, call: Caller = _once) -> None:
        self._settings = settings or PrometheusSettings()
        self._call = call
        self._clients: dict[tuple[str, tuple[tuple[str, str], ...]], PrometheusConnect] = {}
        self._buckets = tuple(self._settings.latency_buckets_ms or ENVOY_DEFAULT_BUCKETS_MS)
        self.queries_sent = 0
        """HTTP queries sent since creation (cache hits excluded); the benchmark and tests read it."""
        self.last_tick_queries = 0
        """HTTP queries sent by the most recent ``collect``."""

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # --- MetricsProvider ---------------------------------------------------------------------

    def collect(self, batch: Sequence[AnalysisRequest], at: datetime) -> dict[str, MetricsSample]:
        tick = _Tick(at=at)
        groups: dict[_GroupKey, list[AnalysisRequest]] = {}
        for request in batch:
            groups.setdefault(self._group_key(request), []).append(request)
        samples: dict[str, MetricsSample] = {}
        for key, members in groups.items():
            results = self._fetch_group(tick, key, members)
            for request in members:
                samples[request.key] = self._sample(tick, key, request, results)
        self.queries_sent += tick.sent
        self.last_tick_queries = tick.sent
        return samples

    # --- batching ----------------------------------------------------------------------------

    def _group_key(self, request: AnalysisRequest) -> _GroupKey:
        headers = {**self._settings.headers, **dict(request.headers)}
        return _GroupKey(
            address=(request.address or self._settings.url).rstrip("/"),
            headers=tuple(sorted(headers.items())),
            backend_label=request.labels.backend,
            selector=request.labels.selector.strip(),
            window_seconds=request.window_seconds,
        )

    def _fetch_group(self, tick: _Tick, key: _GroupKey, members: list[AnalysisRequest]) -> GroupResults:
        values = sorted({backend_value(r.labels, b) for r in members for b in (r.stable, r.canary)})
        scope = Scope(labels=members[0].labels, window_seconds=key.window_seconds, values=tuple(values))
        group = GroupResults(requests_query=scope.requests(), errors_query=scope.errors(), resets_query=scope.resets())
        group.requests = self._query(tick, key, group.requests_query)
        group.errors = self._query(tick, key, group.errors_query)
        group.resets = self._query(tick, key, group.resets_query)
        for bound in sorted({r.latency_bound_seconds for r in members if r.latency_bound_seconds is not None}):
            choice = choose_bucket(bound, self._buckets)
            if choice is None:
                group.slow[bound] = (
                    None,
                    "",
                    MetricsQueryError(
                        f"latency bound {bound * 1000:g}ms is above the largest histogram bucket "
                        f"({max(self._buckets):g}ms); slow requests cannot be counted",
                        query="",
                    ),
                )
                continue
            query = scope.slow(choice)
            group.slow[bound] = (choice, query, self._query(tick, key, query))
        return group

    def _sample(self, tick: _Tick, key: _GroupKey, request: AnalysisRequest, group: GroupResults) -> MetricsSample:
        custom: dict[str, Any] = {}
        custom_queries: dict[str, str] = {}
        canary_value = backend_value(request.labels, request.canary)
        for metric in request.custom:
            try:
                query = render_custom(
                    metric,
                    namespace=request.namespace,
                    backend=canary_value,
                    labels=request.labels,
                    window_seconds=request.window_seconds,
                    interval_seconds=request.interval_seconds,
                )
            except ValueError as e:
                custom[metric.name] = MetricsQueryError(str(e), query=metric.query)
                custom_queries[metric.name] = metric.query
                continue
            custom_queries[metric.name] = query
            custom[metric.name] = self._query(tick, key, query, raw=True)
        try:
            return build_sample(request, group, custom, custom_queries)
        except Exception as e:  # one rollout's surprise must not sink the batch
            return error_sample(request, f"{request.key}: cannot interpret the results: {e!r}")

    # --- one query ---------------------------------------------------------------------------

    def _query(self, tick: _Tick, key: _GroupKey, query: str, *, raw: bool = False) -> Any:
        """The cached result of ``query`` at the tick's time, or the MetricsError it raised."""
        cache_key = (key.address, key.headers, query)
        if cache_key not in tick.results and key.address in tick.unreachable:
            tick.results[cache_key] = tick.unreachable[key.address]  # do not wait out every query of a dead server
        if cache_key not in tick.results:
            client = self._client(key.address, key.headers)
            try:
                tick.results[cache_key] = self._call(lambda: self._attempt(tick, client, query))
            except MetricsUnavailable as e:
                tick.results[cache_key] = tick.unreachable[key.address] = e
            except MetricsError as e:
                tick.results[cache_key] = e
        result = tick.results[cache_key]
        if raw or isinstance(result, MetricsError):
            return result
        return _by_label(result, key.backend_label)

    def _attempt(self, tick: _Tick, client: PrometheusConnect, query: str) -> list[dict[str, Any]]:
        """Exactly one HTTP request; library errors become typed MetricsErrors."""
        tick.sent += 1
        try:
            result: list[dict[str, Any]] = client.custom_query(query, params={"time": f"{tick.at.timestamp():.3f}"})
        except requests.exceptions.Timeout as e:
            raise MetricsUnavailable(
                f"Prometheus at {client.url} timed out after {self._settings.timeout_seconds:g}s"
            ) from e
        except requests.exceptions.RequestException as e:
            raise MetricsUnavailable(f"Prometheus at {client.url} is unreachable: {_reason(e)}") from e
        except PrometheusApiClientException as e:
            raise _translate(e, client.url, query) from e
        except (ValueError, KeyError) as e:  # a 200 that is not Prometheus' JSON (e.g. a proxy page)
            raise MetricsUnavailable(f"Prometheus at {client.url} sent an unreadable answer: {e}") from e
        return result

    def _client(self, address: str, headers: tuple[tuple[str, str], ...]) -> PrometheusConnect:
        client = self._clients.get((address, headers))
        if client is None:
            s = self._settings
            session = requests.Session()
            session.verify = str(s.ca_file) if s.ca_file is not None else s.verify_tls
            all_headers = dict(headers)
            if s.bearer_token is not None:
                all_headers.setdefault("Authorization", f"Bearer {s.bearer_token.get_secret_value()}")
            auth = (
                (s.username, s.password.get_secret_value())
                if s.username is not None and s.password is not None
                else None
            )
            options: dict[str, Any] = {
                "url": address,
                "headers": all_headers,
                "auth": auth,
                "session": session,
                "timeout": s.timeout_seconds,
                "method": "POST",
                # one attempt per call: the library's own retries are switched off
                "retry": Retry(total=0, connect=0, read=0, status=0, redirect=0, raise_on_status=False),
            }
            client = PrometheusConnect(**options)
            self._clients[(address, headers)] = client
        return client


def _translate(e: PrometheusApiClientException, url: str, query: str) -> MetricsError:
    """``HTTP Status Code 400 (b'{"status":"error",...}')`` -> a typed error with Prometheus' reason."""
    text = str(e)
    status_match = _STATUS.search(text)
    status = int(status_match.group(1)) if status_match else 0
    reason = text
    with contextlib.suppress(ValueError, SyntaxError, TypeError, AttributeError):
        body = json.loads(ast.literal_eval(text[text.index("(") + 1 : text.rindex(")")]))
        reason = f"{body.get('errorType', '')}: {body['error']}".lstrip(": ")
    if 400 <= status < 500:
        return MetricsQueryError(f"Prometheus at {url} rejected the query (HTTP {status}) {reason}", query=query)
    return MetricsUnavailable(f"Prometheus at {url} failed (HTTP {status or '?'}) {reason} (query: {query})")


def _reason(e: Exception) -> str:
    """The useful end of a requests error (``[Errno 111] Connection refused``), not the whole chain."""
    match = _ERRNO.search(str(e))
    return match.group(0) if match else f"{type(e).__name__}: {e}"[:300]


def _by_label(result: Any, label: str) -> Vector | MetricsError:
    """Index a ``sum by (label)`` vector by that label's value."""
    vector: Vector = {}
    for series in _series(result):
        name = series.get("metric", {}).get(label)
        if name is None:
            continue
        vector[str(name)] = float(series["value"][1])
    return vector


def _series(result: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(result, list):
        yield from (s for s in result if isinstance(s, dict))
