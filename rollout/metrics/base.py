"""The MetricsProvider Protocol: measure canary and stable over a window, for many rollouts at once.

Owns the request/response types between the runtime and a metrics backend. A provider answers
one batch per tick so that rollouts sharing a metric share one query. It never invents data:
anything it could not measure comes back as a non-OK ``Outcome`` with the reason and the query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rollout.core.readings import Reading
from rollout.policy.models import CustomMetric, MetricLabels, Rollout


@dataclass(frozen=True)
class AnalysisRequest:
    """What one rollout needs measured on this tick."""

    key: str  # namespace/name of the rollout
    namespace: str
    stable: str  # backend names as the router knows them
    canary: str
    window_seconds: float
    interval_seconds: float
    latency_bound_seconds: float | None  # count requests slower than this (latency SLO max)
    labels: MetricLabels = field(default_factory=MetricLabels)
    custom: tuple[CustomMetric, ...] = ()
    address: str | None = None  # per-policy Prometheus override
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_policy(cls, policy: Rollout) -> AnalysisRequest:
        """What ``policy`` needs measured on every tick."""
        spec, analysis = policy.spec, policy.spec.analysis
        latency = analysis.slos.latency
        return cls(
            key=policy.key,
            namespace=policy.metadata.namespace,
            stable=spec.stable,
            canary=spec.canary,
            window_seconds=analysis.effective_window.total_seconds(),
            interval_seconds=analysis.interval.total_seconds(),
            latency_bound_seconds=latency.max.total_seconds() if latency else None,
            labels=analysis.metric_labels,
            custom=tuple(analysis.metrics),
            address=analysis.prometheus.address,
            headers=dict(analysis.prometheus.headers),
        )


class MetricsProvider(Protocol):
    def collect(self, batch: Sequence[AnalysisRequest], at: datetime) -> dict[str, Reading]:
        """Measure every request of the batch at time ``at``; the result maps ``key`` to its sample.

        Must not raise for a single bad rollout (its sample carries the error outcome); every
        request in the batch gets a sample.
        """
        ...
