"""The daemon's own Prometheus metrics (served on ``/metrics``): phase, weights, verdict values and
evidence per rollout, reconcile duration, API and Prometheus errors, leadership.

Owns metric names and labels; it only records what others observed.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rollout.core.states import Phase, RolloutState


class Telemetry:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.phase = Gauge(
            "rollout_phase",
            "1 for the rollout's current phase, 0 for the others",
            ["rollout", "phase"],
            registry=r,
        )
        self.canary_weight = Gauge(
            "rollout_canary_weight_percent", "canary weight rollout last set", ["rollout"], registry=r
        )
        self.step = Gauge("rollout_step", "current step (1-based)", ["rollout"], registry=r)
        self.failures = Gauge("rollout_failed_checks", "failed checks in the current run", ["rollout"], registry=r)
        self.verdict_value = Gauge(
            "rollout_verdict_value",
            "last judged value of a check (ratio or metric)",
            ["rollout", "check"],
            registry=r,
        )
        self.verdict_limit = Gauge(
            "rollout_verdict_limit", "limit the check was held against", ["rollout", "check"], registry=r
        )
        self.verdict_evidence = Gauge(
            "rollout_verdict_evidence",
            "sequential judge evidence of a check",
            ["rollout", "check"],
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "rollout_reconcile_duration_seconds",
            "time of one reconcile",
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.api_errors = Counter("rollout_api_errors_total", "Kubernetes API and route errors", ["kind"], registry=r)
        self.prometheus_errors = Counter(
            "rollout_prometheus_errors_total", "metric samples that failed", ["outcome"], registry=r
        )
        self.leader = Gauge("rollout_leader", "1 while this replica holds the leader lease", registry=r)

    def observe(self, key: str, state: RolloutState) -> None:
        for phase in Phase:
            self.phase.labels(rollout=key, phase=phase.value).set(1 if state.phase is phase else 0)
        self.canary_weight.labels(rollout=key).set(state.weights.canary)
        self.step.labels(rollout=key).set(state.step + 1)
        self.failures.labels(rollout=key).set(state.failures)
        if state.verdict is None:
            return
        for check in state.verdict.checks:
            if check.value is not None:
                self.verdict_value.labels(rollout=key, check=check.name).set(check.value)
            if check.limit is not None:
                self.verdict_limit.labels(rollout=key, check=check.name).set(check.limit)
            if check.evidence is not None:
                self.verdict_evidence.labels(rollout=key, check=check.name).set(check.evidence)

    def forget(self, key: str) -> None:
        """Drop a deleted rollout's series."""
        for gauge in (self.canary_weight, self.step, self.failures):
            with contextlib.suppress(KeyError):
                gauge.remove(key)
        for phase in Phase:
            with contextlib.suppress(KeyError):
                self.phase.remove(key, phase.value)
