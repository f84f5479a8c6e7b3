"""The MetricsProvider Protocol: read every rollout's cumulative counters at one instant, in one batch.

Owns the request/response types between the runtime and a metrics backend. A provider answers
one batch per tick (rollouts sharing an endpoint share their queries) with one
``rollout.core.readings.Reading`` per rollout: cumulative counters per backend and per scrape
target as last sampled at or before the instant asked for, never a rate or a windowed increase
(the pure core diffs consecutive readings). It never invents data: anything it could not measure
comes back as a non-OK ``Outcome`` with the reason and the query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rollout.core.readings import Outcome, Reading
from rollout.policy.models import CustomMetric, MetricLabels, Rollout

DEFAULT_ENDPOINT = "default"
"""The name of the daemon's main Prometheus endpoint."""

PRECEDENCE = (Outcome.UNAVAILABLE, Outcome.QUERY_ERROR, Outcome.NO_DATA, Outcome.PARTIAL, Outcome.NAN)
"""When several things are wrong with one reading, its outcome is the first of these; the detail lists all."""


@dataclass(frozen=True)
class AnalysisRequest:
    """What one rollout needs read on this tick.

    Where to ask: ``endpoint`` names a Prometheus endpoint configured in the daemon (its URL,
    credentials, TLS settings); ``address``, when set, is a URL the policy chose and the daemon
    allowed: it is sent only ``headers`` and ``bearer_token`` (resolved by the runtime from a
    Secret in the rollout's own namespace), never the endpoint's credentials or headers.
    ``window_seconds`` only fills the ``{window}`` variable of custom metric templates.
    """

    key: str  # namespace/name of the rollout
    namespace: str
    stable: str  # backend names as the router knows them
    canary: str
    interval_seconds: float
    latency_bound_seconds: float | None  # the latency SLO bound, None when latency is not judged
    window_seconds: float = 0.0  # {window} of custom templates; 0 means the interval
    labels: MetricLabels = field(default_factory=MetricLabels)
    custom: tuple[CustomMetric, ...] = ()
    endpoint: str = DEFAULT_ENDPOINT
    address: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    bearer_token: str | None = field(default=None, repr=False)

    @property
    def custom_window_seconds(self) -> float:
        return self.window_seconds or self.interval_seconds

    @classmethod
    def for_policy(
        cls, policy: Rollout, *, endpoint: str | None = None, bearer_token: str | None = None
    ) -> AnalysisRequest:
        """What ``policy`` needs read on every tick.

        ``endpoint`` defaults to the policy's ``analysis.prometheus.endpoint`` (the daemon's
        default endpoint where the policy names none); ``bearer_token`` is the token the runtime
        resolved for a policy ``address`` (never used for an endpoint).
        """
        spec, analysis = policy.spec, policy.spec.analysis
        latency = analysis.slos.latency
        override = analysis.prometheus
        return cls(
            key=policy.key,
            namespace=policy.metadata.namespace,
            stable=spec.stable,
            canary=spec.canary,
            interval_seconds=analysis.interval.total_seconds(),
            latency_bound_seconds=latency.max.total_seconds() if latency else None,
            window_seconds=analysis.effective_window.total_seconds(),
            labels=analysis.metric_labels,
            custom=tuple(analysis.metrics),
            endpoint=endpoint or override.endpoint or DEFAULT_ENDPOINT,
            address=override.address,
            headers=dict(override.headers),
            bearer_token=bearer_token if override.address else None,
        )


def header_problem(name: str, value: str) -> str | None:
    """Why an HTTP header cannot be sent as is (CR/LF would let it inject other headers), or None.

    The value itself is never quoted: it may be a credential.
    """
    if not name or any(c in name for c in "\r\n:") or name != name.strip():
        return f"header name {name!r} is not a valid HTTP header name"
    if "\r" in value or "\n" in value:
        return f"the value of header {name!r} contains a CR or LF character"
    return None


def outcome_of(problems: Sequence[tuple[Outcome, str]]) -> Outcome:
    """The outcome a reading with these problems gets (OK without any)."""
    return min((o for o, _ in problems), key=PRECEDENCE.index, default=Outcome.OK)


def failed(outcome: Outcome, detail: str, at: datetime, *queries: str) -> Reading:
    """A reading with no numbers at all: ``detail`` says why."""
    return Reading(outcome=outcome, taken_at=at, detail=detail, queries=tuple(q for q in queries if q))


class MetricsProvider(Protocol):
    def collect(self, batch: Sequence[AnalysisRequest], at: datetime) -> dict[str, Reading]:
        """Read every request of the batch as of exactly ``at``; the result maps ``key`` to its reading.

        ``at`` should lie a little in the past (a few seconds more than a scrape takes) so that
        every sample up to it has been ingested. Must not raise for a single bad rollout (its
        reading carries the error outcome); every request in the batch gets a reading.
        """
        ...
