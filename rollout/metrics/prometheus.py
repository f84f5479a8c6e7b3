"""PrometheusProvider: the MetricsProvider that reads cumulative Envoy counters from real Prometheus servers.

Owns batching and routing: which connection a rollout is read through (a daemon-configured
endpoint with its credentials, or a policy ``address`` that only ever gets the rollout's own
headers and bearer token), the grouping of a tick's rollouts so that each group costs a constant
number of instant queries whatever its size (requests, 5xx, sample times, and latency buckets
when a rollout judges latency; plus one query per distinct custom query), all evaluated at the
tick's ``at``, and the rule that after the first unreachable answer a server is not asked again
in the same tick. Every query is attempted once through ``call`` (the runtime passes
``METRICS_READS.call`` to retry unavailability); this module never retries on its own and never
fills missing data with zero (see ``assembling.build_reading``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from rollout.core.readings import LatencyBuckets, Outcome, Reading
from rollout.errors import MetricsError, MetricsQueryError, SettingsError
from rollout.metrics.assembling import GroupAnswers, buckets_by_target, build_reading, by_target
from rollout.metrics.base import AnalysisRequest, failed, header_problem
from rollout.metrics.connecting import PrometheusConnection, PrometheusUnreachable
from rollout.metrics.queries import (
    ENVOY_DEFAULT_BUCKETS_MS,
    Scope,
    backend_value,
    latency_buckets,
    render_custom,
)
from rollout.settings import PrometheusSettings

T = TypeVar("T")


class Caller(Protocol):
    """Runs one attempt-function; the runtime passes ``METRICS_READS.call`` to retry it."""

    def __call__(self, fn: Callable[[], T], /) -> T: ...


def _once(fn: Callable[[], T], /) -> T:
    return fn()


@dataclass(frozen=True)
class _Route:
    """Who a request is sent to and as whom: equal routes share one connection."""

    url: str
    endpoint: str  # the endpoint whose non-secret settings apply (timeout, latency buckets)
    headers: tuple[tuple[str, str], ...]
    bearer_token: str | None = field(default=None, repr=False)  # only for a policy address
    via_address: bool = False


@dataclass(frozen=True)
class _GroupKey:
    route: _Route
    backend_label: str
    selector: str


@dataclass
class _Tick:
    """What one ``collect`` fetched: answers per (route, query), servers found unreachable, queries sent."""

    at: datetime
    answers: dict[tuple[_Route, str], Any] = field(default_factory=dict)
    unreachable: dict[str, PrometheusUnreachable] = field(default_factory=dict)  # url -> why
    sent: int = 0


class PrometheusProvider:
    """Reads the counters of many rollouts with a constant number of queries per group and tick.

    ``endpoints`` maps an endpoint name to its settings; ``"default"`` is the daemon's main one.
    """

    def __init__(self, endpoints: Mapping[str, PrometheusSettings], *, call: Caller = _once) -> None:
        for name, settings in endpoints.items():
            problems = [header_problem(h, v) for h, v in settings.headers.items()]
            if settings.bearer_token is not None and header_problem(
                "Authorization", settings.bearer_token.get_secret_value()
            ):
                problems.append("the bearer token contains a CR or LF character")
            if any(problems):
                raise SettingsError(f"Prometheus endpoint {name!r}: {'; '.join(p for p in problems if p)}")
        self._endpoints = dict(endpoints)
        self._call = call
        self._connections: dict[_Route, PrometheusConnection] = {}
        self.queries_sent = 0
        """HTTP queries sent since creation; the benchmark and tests read it."""
        self.last_tick_queries = 0
        """HTTP queries sent by the most recent ``collect``."""

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    # --- MetricsProvider ---------------------------------------------------------------------

    def collect(self, batch: Sequence[AnalysisRequest], at: datetime) -> dict[str, Reading]:
        tick = _Tick(at=at)
        readings: dict[str, Reading] = {}
        groups: dict[_GroupKey, list[AnalysisRequest]] = {}
        for request in batch:
            route = self._route(request)
            if isinstance(route, str):
                readings[request.key] = failed(Outcome.QUERY_ERROR, f"{request.key}: {route}", at)
                continue
            key = _GroupKey(route, request.labels.backend, request.labels.selector.strip())
            groups.setdefault(key, []).append(request)
        for key, members in groups.items():
            try:
                answers, brackets = self._fetch_group(tick, key, members)
            except Exception as e:  # a surprise in one group must not sink the others
                for request in members:
                    readings[request.key] = failed(Outcome.QUERY_ERROR, f"{request.key}: cannot read: {e!r}", at)
                continue
            for request in members:
                try:
                    latency = brackets.get(request.latency_bound_seconds) if request.latency_bound_seconds else None
                    custom = self._custom(tick, key.route, request)
                    readings[request.key] = build_reading(request, answers, latency, custom, at)
                except Exception as e:  # one rollout's surprise must not sink the batch
                    readings[request.key] = failed(
                        Outcome.QUERY_ERROR, f"{request.key}: cannot interpret the answers: {e!r}", at, *answers.queries
                    )
        self.queries_sent += tick.sent
        self.last_tick_queries = tick.sent
        return readings

    # --- routing -----------------------------------------------------------------------------

    def _route(self, request: AnalysisRequest) -> _Route | str:
        """Where and as whom ``request`` is read, or why it cannot be."""
        settings = self._endpoints.get(request.endpoint)
        if settings is None:
            known = ", ".join(sorted(self._endpoints)) or "none"
            return f"Prometheus endpoint {request.endpoint!r} is not configured in the daemon (known: {known})"
        for name, value in request.headers.items():
            problem = header_problem(name, value)
            if problem:
                return f"analysis.prometheus.headers: {problem}; refused"
        if request.address:
            if request.bearer_token is not None and header_problem("Authorization", request.bearer_token):
                return "the bearer token for analysis.prometheus.address contains a CR or LF character; refused"
            return _Route(
                url=request.address.rstrip("/"),
                endpoint=request.endpoint,
                headers=tuple(sorted(request.headers.items())),
                bearer_token=request.bearer_token,
                via_address=True,
            )
        merged = {**settings.headers, **request.headers}
        return _Route(url=settings.url.rstrip("/"), endpoint=request.endpoint, headers=tuple(sorted(merged.items())))

    def _connection(self, route: _Route) -> PrometheusConnection:
        connection = self._connections.get(route)
        if connection is None:
            s = self._endpoints[route.endpoint]
            headers = dict(route.headers)
            if route.via_address:  # a policy-chosen URL: only the rollout's own headers and token
                if route.bearer_token is not None:
                    headers["Authorization"] = f"Bearer {route.bearer_token}"
                connection = PrometheusConnection(route.url, headers=headers, timeout_seconds=s.timeout_seconds)
            else:  # the endpoint's own URL: its credentials win over any policy header
                if s.bearer_token is not None:
                    headers["Authorization"] = f"Bearer {s.bearer_token.get_secret_value()}"
                basic = (
                    (s.username, s.password.get_secret_value())
                    if s.username is not None and s.password is not None
                    else None
                )
                verify: bool | str = str(s.ca_file) if s.ca_file is not None else s.verify_tls
                connection = PrometheusConnection(
                    route.url, headers=headers, basic_auth=basic, verify=verify, timeout_seconds=s.timeout_seconds
                )
            self._connections[route] = connection
        return connection

    # --- queries -----------------------------------------------------------------------------

    def _fetch_group(
        self, tick: _Tick, key: _GroupKey, members: list[AnalysisRequest]
    ) -> tuple[GroupAnswers, dict[float, LatencyBuckets]]:
        values = sorted({backend_value(r.labels, b) for r in members for b in (r.stable, r.canary)})
        scope = Scope(labels=members[0].labels, values=tuple(values))
        settings = self._endpoints[key.route.endpoint]
        bucket_bounds = tuple(settings.latency_buckets_ms or ENVOY_DEFAULT_BUCKETS_MS)
        brackets = {
            bound: latency_buckets(bound, bucket_bounds)
            for bound in sorted({r.latency_bound_seconds for r in members if r.latency_bound_seconds})
        }
        group = GroupAnswers(
            requests_query=scope.requests(), errors_query=scope.errors(), times_query=scope.sample_times()
        )
        group.requests = self._vector(tick, key, group.requests_query)
        group.errors = self._vector(tick, key, group.errors_query)
        group.times = self._vector(tick, key, group.times_query)
        if brackets:
            bounds = {b for lb in brackets.values() for b in (lb.below_ms, lb.above_ms) if b is not None}
            group.buckets_query = scope.buckets(bounds)
            answer = self._query(tick, key.route, group.buckets_query)
            group.buckets = answer if isinstance(answer, MetricsError) else buckets_by_target(answer, key.backend_label)
        return group, brackets

    def _vector(self, tick: _Tick, key: _GroupKey, query: str) -> Any:
        answer = self._query(tick, key.route, query)
        return answer if isinstance(answer, MetricsError) else by_target(answer, key.backend_label)

    def _custom(self, tick: _Tick, route: _Route, request: AnalysisRequest) -> dict[str, tuple[str, Any]]:
        """name -> (rendered query, its answer or MetricsError) for the request's custom metrics."""
        out: dict[str, tuple[str, Any]] = {}
        canary = backend_value(request.labels, request.canary)
        for metric in request.custom:
            try:
                query = render_custom(
                    metric,
                    namespace=request.namespace,
                    backend=canary,
                    labels=request.labels,
                    window_seconds=request.custom_window_seconds,
                    interval_seconds=request.interval_seconds,
                )
            except ValueError as e:
                out[metric.name] = (metric.query, MetricsQueryError(str(e), query=metric.query))
                continue
            out[metric.name] = (query, self._query(tick, route, query))
        return out

    def _query(self, tick: _Tick, route: _Route, query: str) -> Any:
        """The answer to ``query`` at the tick's instant (fetched once per tick), or the MetricsError it raised."""
        cache = (route, query)
        if cache in tick.answers:
            return tick.answers[cache]
        if route.url in tick.unreachable:  # do not wait out every query of a dead server
            tick.answers[cache] = tick.unreachable[route.url]
            return tick.answers[cache]
        connection = self._connection(route)

        def attempt() -> Any:
            tick.sent += 1
            return connection.query(query, tick.at)

        try:
            tick.answers[cache] = self._call(attempt)
        except PrometheusUnreachable as e:
            tick.answers[cache] = tick.unreachable[route.url] = e
        except MetricsError as e:
            tick.answers[cache] = e
        return tick.answers[cache]
