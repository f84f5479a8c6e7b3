"""The daemon's own Prometheus metrics, served on ``/metrics``.

Owns metric names, labels and units, and which series exist: every per-rollout series (labels
``namespace`` and ``name``) appears when a rollout is first observed and is removed by
``forget`` or when this replica stops leading; the phase and the verdict kind are one series per
rollout whose label is replaced on change. Names start with ``rolloutd_`` so that they never collide
with Argo Rollouts' (``rollout_info``, ``rollout_phase``, ``analysis_run_*``...) or Flagger's;
README "Metrics" lists them all. Units are base units (``_seconds``, ``_ratio`` for 0..1 shares).

The daemon calls plain-argument methods (``observe``, ``promoted``, ``rolled_back``, ``forget``,
``set_leader``, ``reconciled``, ``api_error``, ``reconcile_error``, ``prometheus_error``,
``scheduled``, ``set_backlog``, ``coalesced``); this module records what others observed and never
decides, reads the cluster or imports the engine's state types. The per-rollout families are one
collector over a small record per rollout (``series.RolloutSeries``), so their cost does not grow
with a prometheus_client object per series. It also adds prometheus_client's process, GC and
platform collectors and ``rolloutd_build_info``, and switches off prometheus_client's ``*_created``
series (process-wide) so that each counter is one series.
"""

from __future__ import annotations

import platform
from collections.abc import Collection, Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from rollout import __version__
from rollout.runtime.series import RolloutSeries

PREFIX = "rolloutd"
ROLLOUT = ("namespace", "name")
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class JudgedCheck(Protocol):
    """What telemetry reads of one check (``rollout.core.verdicts.Check`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def limit(self) -> float | None: ...
    @property
    def evidence(self) -> float | None: ...
    @property
    def threshold(self) -> float | None: ...


class JudgedVerdict(Protocol):
    """What telemetry reads of a verdict (``rollout.core.verdicts.Verdict`` has it)."""

    @property
    def kind(self) -> Any: ...  # a StrEnum: its ``value`` is pass | fail | hold
    @property
    def checks(self) -> Iterable[JudgedCheck]: ...


class Telemetry:
    """Every metric of the daemon in one registry (``registry`` is what ``/metrics`` serves)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, runtime_collectors: bool = True) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created twin of each counter series
        self.registry = r = registry or CollectorRegistry()
        if runtime_collectors:
            ProcessCollector(registry=r)
            GCCollector(registry=r)
            PlatformCollector(registry=r)
        Info(f"{PREFIX}_build", "the running daemon's version", registry=r).info(
            {"version": __version__, "python_version": platform.python_version()}
        )
        self._series = RolloutSeries(PREFIX)
        r.register(self._series)
        self._leader = Gauge(f"{PREFIX}_leader", "1 while this replica leads (holds the lease or a shard)", registry=r)
        self._leader_shards = Gauge(f"{PREFIX}_leader_shards", "shards whose lease this replica holds", registry=r)
        self._shards = Gauge(f"{PREFIX}_shards", "shards the rollouts are split into (1: no sharding)", registry=r)
        self._shards.set(1)
        self.reconcile_seconds = Histogram(
            f"{PREFIX}_reconcile_duration_seconds", "time of one reconcile", registry=r, buckets=RECONCILE_BUCKETS
        )
        self._reconcile_errors = Counter(
            f"{PREFIX}_reconcile_errors_total", "reconciles that ended in an error, by error type", ["kind"], registry=r
        )
        self.api_errors = Counter(
            f"{PREFIX}_api_errors_total", "Kubernetes API and route errors, by error type", ["kind"], registry=r
        )
        self.prometheus_errors = Counter(
            f"{PREFIX}_prometheus_errors_total", "metric samples that failed, by outcome", ["outcome"], registry=r
        )
        for outcome in ("unavailable", "query-error"):
            self.prometheus_errors.labels(outcome=outcome)
        self._lag = Histogram(
            f"{PREFIX}_scheduler_lag_seconds",
            "delay from a reconcile's due time to its start",
            registry=r,
            buckets=LAG_BUCKETS,
        )
        self._backlog = Gauge(f"{PREFIX}_scheduler_backlog", "reconciles due and not yet started", registry=r)
        self._coalesced = Counter(
            f"{PREFIX}_scheduler_coalesced_total",
            "wakes folded into a reconcile already due or running (it runs once; none is dropped)",
            registry=r,
        )

    # --- per rollout ----------------------------------------------------------------------------

    def observe(
        self,
        namespace: str,
        name: str,
        *,
        phase: str,
        step: int,
        steps: int,
        canary_weight: int,
        desired_canary_weight: int,
        verdict: JudgedVerdict | None = None,
    ) -> None:
        """Export a rollout as it is now. Weights are percent (0-100); ``step`` is 1-based."""
        kind = "" if verdict is None else str(getattr(verdict.kind, "value", verdict.kind))
        checks = (
            {} if verdict is None else {c.name: (c.value, c.limit, c.evidence, c.threshold) for c in verdict.checks}
        )
        self._series.show(
            namespace,
            name,
            phase=phase,
            step=step,
            steps=steps,
            weight=canary_weight / 100,
            desired=desired_canary_weight / 100,
            verdict=kind,
            checks=checks,
        )

    def promoted(self, namespace: str, name: str) -> None:
        """A run ended Promoted (call once per run, when the phase becomes Promoted)."""
        self._series.count(namespace, name, promoted=True)

    def rolled_back(self, namespace: str, name: str) -> None:
        """A run ended RolledBack (call once per run, when the phase becomes RolledBack)."""
        self._series.count(namespace, name, promoted=False)

    def forget(self, namespace: str, name: str) -> None:
        """Remove every series of a rollout (deleted, or no longer this replica's to reconcile)."""
        self._series.forget(namespace, name)

    def forget_all(self) -> None:
        self._series.clear()

    def rollouts(self) -> list[tuple[str, str]]:
        """The (namespace, name) of every rollout with series."""
        return self._series.rollouts()

    # --- the daemon -----------------------------------------------------------------------------

    def set_leader(self, leading: bool | Collection[int], *, shards: int = 1) -> None:
        """What this replica leads: ``True``/``False`` (one Lease), or the shard numbers it holds
        out of ``shards``. Losing every lease drops all per-rollout series, since only a leader
        reconciles and a standby must not export a stale picture."""
        held = (1 if leading else 0) if isinstance(leading, bool) else len(leading)
        self._shards.set(shards)
        self._leader_shards.set(held)
        self._leader.set(1 if held else 0)
        if not held:
            self.forget_all()

    def reconciled(self, seconds: float) -> None:
        """One reconcile finished (successfully or not) after ``seconds``."""
        self.reconcile_seconds.observe(seconds)

    def reconcile_error(self, kind: str) -> None:
        """A reconcile ended in an error; ``kind`` is its type name (e.g. ``KubeError``)."""
        self._reconcile_errors.labels(kind=kind).inc()

    def api_error(self, kind: str) -> None:
        """A Kubernetes API or route call failed; ``kind`` is the error's type name."""
        self.api_errors.labels(kind=kind).inc()

    def prometheus_error(self, outcome: str) -> None:
        """A metrics sample failed: ``unavailable`` (Prometheus unreachable) or ``query-error``."""
        self.prometheus_errors.labels(outcome=outcome).inc()

    def scheduled(self, lag_seconds: float) -> None:
        """A reconcile started ``lag_seconds`` after it was due."""
        self._lag.observe(max(0.0, lag_seconds))

    def set_backlog(self, due: int) -> None:
        """Reconciles that are due and not yet started."""
        self._backlog.set(due)

    def coalesced(self, count: int = 1) -> None:
        """Wakes folded into a reconcile of the same rollout already due or running."""
        self._coalesced.inc(count)
