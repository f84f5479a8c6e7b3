"""The worlds the metrics-provider contract suite runs in: one scripted traffic history, played by the
in-memory provider and stored in a real Prometheus (backfilled TSDB, ``tests.harness.backfill``).

Owns the world (backends, their traffic, and the events at fixed instants: a restart, a removal, a
late backend), the per-case ways to get a provider, an unreachable provider, the exact truth, and
custom metrics of each kind. Every backend runs on two scrape targets scraped every 15 s, the
second 7 s (memory: 7.5 s) after the first. Times are seconds since the world's start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from rollout.core.readings import ArmCounts, LatencyBuckets, Reading
from rollout.metrics.base import AnalysisRequest, MetricsProvider
from rollout.metrics.memory import MemoryMetrics
from rollout.metrics.prometheus import PrometheusProvider
from rollout.policy.models import CustomMetric, MetricLabels
from rollout.settings import PrometheusSettings
from tests.harness.backfill import START, Event, History, Job, serve
from tests.harness.prometheus import PrometheusServer, free_port

SCRAPE = 15
DURATION = 1200
RESTART_AT = 600  # restart-v2's first target restarts right after its scrape at 600
REMOVED_AT = 300  # gone-v2 disappears
LATE_AT = 450  # late-v2 appears
JOB = "contract"

# backend -> (requests per second per target, 5xx share, memory slow share, memory slow-above share)
BACKENDS: dict[str, tuple[float, float, float, float]] = {
    "steady-v1": (60.0, 0.01, 0.05, 0.01),
    "steady-v2": (20.0, 0.05, 0.08, 0.02),
    "restart-v1": (30.0, 0.02, 0.05, 0.01),
    "restart-v2": (30.0, 0.2, 0.05, 0.01),  # 20% errors: its 503 series is back at the first scrape after a restart
    "gone-v1": (10.0, 0.01, 0.05, 0.01),
    "gone-v2": (10.0, 0.01, 0.05, 0.01),
    "late-v1": (10.0, 0.01, 0.05, 0.01),
    "late-v2": (10.0, 0.01, 0.05, 0.01),
}
# exporter latency profiles (median, p99 ms) for the real histogram
LATENCY = {"steady-v1": (30.0, 300.0), "steady-v2": (60.0, 900.0)}

CUSTOM_QUERIES = {
    "good": "vector(0.5)",
    "nan": "vector(0) / 0",
    "absent": 'absent_metric{{{backend_label}="{backend}"}}',
    "bad": 'sum(rate(envoy_cluster_upstream_rq{{{backend_label}="{backend}"}}[{window}])',  # unbalanced
}
"""Custom metrics of every kind, the same for every case (the memory provider knows "good" = 0.5 and
"nan" by name, has no value for "absent" and rejects the unbalanced "bad" query)."""


def custom_metric(kind: str) -> CustomMetric:
    return CustomMetric(name=kind, query=CUSTOM_QUERIES[kind], max=1)


class MetricsCase(ABC):
    """One provider in the contract world."""

    id: str

    def at(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(START + seconds, UTC)

    def request(
        self,
        key: str,
        stable: str,
        canary: str,
        *,
        bound: float | None = 0.25,
        custom: Sequence[CustomMetric] = (),
    ) -> AnalysisRequest:
        return AnalysisRequest(
            key=key,
            namespace="contract",
            stable=stable,
            canary=canary,
            interval_seconds=30,
            latency_bound_seconds=bound,
            labels=MetricLabels(selector=f'job="{JOB}"'),
            custom=tuple(custom),
        )

    @abstractmethod
    def provider(self) -> MetricsProvider:
        """A fresh provider reading the world (nothing read yet)."""

    @abstractmethod
    def unreachable(self) -> MetricsProvider:
        """A provider whose backend cannot be reached."""

    @abstractmethod
    def collect(
        self, provider: MetricsProvider, batch: Sequence[AnalysisRequest], seconds: float
    ) -> dict[str, Reading]:
        """Read the batch at world time ``seconds`` (applying the world's events up to then)."""

    @abstractmethod
    def truth(self, provider: MetricsProvider, backend: str, at: datetime, latency: LatencyBuckets | None) -> ArmCounts:
        """What ``backend`` served up to each target's last scrape at or before ``at``, slow and
        slow_above counted at ``latency``'s buckets."""

    def queries_sent(self, provider: MetricsProvider) -> int | None:
        """Queries the last collect sent, where the provider has queries."""
        return provider.last_tick_queries if isinstance(provider, PrometheusProvider) else None


class MemoryCase(MetricsCase):
    id = "memory"

    def __init__(self) -> None:
        self._applied: dict[int, float] = {}  # id(provider) -> world time its events were applied up to

    def provider(self) -> MemoryMetrics:
        total = sum(rps for rps, *_ in BACKENDS.values())
        metrics = MemoryMetrics(
            rps=total * 2, share=lambda b: BACKENDS[b][0] / total if b in BACKENDS else 0.0, seed=5,
            scrape_seconds=SCRAPE, targets=2,
        )  # fmt: skip
        for name, (_, errors, slow, slow_above) in BACKENDS.items():
            profile = metrics.profile(name)
            profile.error_rate, profile.slow_share, profile.slow_above_share = errors, slow, slow_above
        for name in BACKENDS:  # only the world's backends exist; any other name has no series
            metrics.profile(name)
        metrics.custom_values["good"] = 0.5
        metrics.custom_values["nan"] = float("nan")
        metrics.profile("late-v2").serving = False
        self._applied[id(metrics)] = 0.0
        return metrics

    def unreachable(self) -> MemoryMetrics:
        metrics = self.provider()
        metrics.unavailable = True
        return metrics

    def collect(
        self, provider: MetricsProvider, batch: Sequence[AnalysisRequest], seconds: float
    ) -> dict[str, Reading]:
        assert isinstance(provider, MemoryMetrics)
        for name in {b for r in batch for b in (r.stable, r.canary)} - set(BACKENDS):
            provider.profile(name).serving = False  # a name outside the world has no series
        applied = self._applied[id(provider)]
        for when, apply in self._events(provider):
            if applied < when <= seconds:
                provider.collect(list(batch), self.at(when))  # the world reaches the event's instant...
                apply()  # ...then the event happens
        self._applied[id(provider)] = max(applied, seconds)
        return provider.collect(batch, self.at(seconds))

    def _events(self, m: MemoryMetrics) -> Iterator[tuple[float, Callable[[], None]]]:
        yield REMOVED_AT, lambda: setattr(m.profile("gone-v2"), "serving", False)
        yield LATE_AT, lambda: setattr(m.profile("late-v2"), "serving", True)
        yield RESTART_AT, lambda: m.restart("restart-v2", "gateway-0")

    def truth(self, provider: MetricsProvider, backend: str, at: datetime, latency: LatencyBuckets | None) -> ArmCounts:
        assert isinstance(provider, MemoryMetrics)
        return provider.truth(backend, at.timestamp(), latency)


class BackfilledCase(MetricsCase):
    """The world's history in a real Prometheus TSDB; ``start()`` builds and serves it."""

    id = "prometheus"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.history: History | None = None
        self.server: PrometheusServer | None = None
        self._providers: list[PrometheusProvider] = []

    def start(self) -> BackfilledCase:
        history = History(jobs=[Job(JOB, SCRAPE, stagger_seconds=7)], pods=2, seed=5)
        for name, (rps, errors, *_) in BACKENDS.items():
            if name != "late-v2":
                median, p99 = LATENCY.get(name, (20.0, 200.0))
                history.backend(name, rps=rps, error_rate=errors, latency_median_ms=median, latency_p99_ms=p99)
        history.run(
            DURATION,
            [
                Event(REMOVED_AT, "remove", "gone-v2"),
                Event(LATE_AT, "set", "late-v2", changes={"rps": BACKENDS["late-v2"][0], "error_rate": 0.01}),
                Event(RESTART_AT, "reset", "restart-v2", pods=(0,)),
            ],
        )
        self.history = history
        self.server = serve(history, binary=self.binary)
        return self

    def close(self) -> None:
        for provider in self._providers:
            provider.close()
        if self.server is not None:
            self.server.close()
        if self.history is not None:
            self.history.close()

    def provider(self) -> PrometheusProvider:
        assert self.server is not None
        provider = PrometheusProvider({"default": PrometheusSettings(url=self.server.url)})
        self._providers.append(provider)
        return provider

    def unreachable(self) -> PrometheusProvider:
        provider = PrometheusProvider({"default": PrometheusSettings(url=f"http://127.0.0.1:{free_port()}")})
        self._providers.append(provider)
        return provider

    def collect(
        self, provider: MetricsProvider, batch: Sequence[AnalysisRequest], seconds: float
    ) -> dict[str, Reading]:
        return provider.collect(batch, self.at(seconds))

    def truth(self, provider: MetricsProvider, backend: str, at: datetime, latency: LatencyBuckets | None) -> ArmCounts:
        assert self.history is not None
        truth = self.history.truth(JOB, backend, at.timestamp())
        if latency is None:
            return ArmCounts(truth.requests, truth.errors)
        above = truth.slower(latency.above_ms) if latency.above_ms is not None else 0.0
        return ArmCounts(truth.requests, truth.errors, truth.slower(latency.below_ms), above)
