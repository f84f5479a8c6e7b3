"""The per-rollout series of ``/metrics`` as one collector over a table of what each rollout shows.

Owns the per-rollout metric families (names, help, labels ``namespace`` and ``name``): a small
record per rollout, replaced by ``observe`` and dropped by ``forget``, from which the families
are built when Prometheus scrapes. Compared with one prometheus_client child (a lock and an
object) per series, a rollout costs a few hundred bytes instead of ~10 KB, an observation is a
few assignments, and forgetting one costs the same at any number of rollouts. It records what
``telemetry.Telemetry`` hands it and decides nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

LABELS = ("namespace", "name")
CheckNumbers = tuple[float | None, float | None, float | None, float | None]  # value, limit, evidence, threshold


@dataclass(slots=True)
class Shown:
    """What one rollout shows; ``None`` (or ``""``): that series is absent."""

    phase: str = ""
    step: int | None = None
    steps: int | None = None
    weight: float | None = None  # 0-1
    desired: float | None = None  # 0-1
    counted: bool = False  # its run counters exist (at 0) from its first observation
    promotions: float = 0.0
    rollbacks: float = 0.0
    verdict: str = ""
    checks: dict[str, CheckNumbers] = field(default_factory=dict)


_CHECKS = (
    ("verdict_check_value", "last judged value of a check (ratio or metric)"),
    ("verdict_check_limit", "the limit that value was held against"),
    ("verdict_check_evidence", "sequential judge: log e-value of a check"),
    ("verdict_check_evidence_threshold", "log e-value at which the check decides"),
)


class RolloutSeries:
    """The collector (register it once); every method is thread-safe."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._shown: dict[tuple[str, str], Shown] = {}

    def show(
        self,
        namespace: str,
        name: str,
        *,
        phase: str,
        step: int,
        steps: int,
        weight: float,
        desired: float,
        verdict: str,
        checks: dict[str, CheckNumbers],
    ) -> None:
        """What a rollout shows now (``steps`` 0: keep the last known; ``verdict`` "": none)."""
        with self._lock:
            s = self._shown.setdefault((namespace, name), Shown())
            s.phase, s.step, s.weight, s.desired, s.verdict, s.checks = phase, step, weight, desired, verdict, checks
            if steps:
                s.steps = steps
            s.counted = True

    def count(self, namespace: str, name: str, *, promoted: bool) -> None:
        """One more run of this rollout ended Promoted (``promoted``) or RolledBack."""
        with self._lock:
            s = self._shown.setdefault((namespace, name), Shown())
            s.counted = True
            if promoted:
                s.promotions += 1
            else:
                s.rollbacks += 1

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._shown.pop((namespace, name), None)

    def clear(self) -> None:
        with self._lock:
            self._shown.clear()

    def rollouts(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._shown)

    def describe(self) -> Iterator[Metric]:
        return self._families([])

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            rows = [(key, _copy(shown)) for key, shown in self._shown.items()]
        return self._families(rows)

    def _families(self, rows: list[tuple[tuple[str, str], Shown]]) -> Iterator[Metric]:
        p = self.prefix

        def gauge(name: str, help_text: str, *extra: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{p}_{name}", help_text, labels=[*LABELS, *extra])

        info = gauge("rollout_info", "1 per rollout; the phase label is its current phase", "phase")
        step = gauge("rollout_step", "current step of the run, 1-based (0 before the first)")
        steps = gauge("rollout_steps", "number of steps in the rollout's policy")
        weight = gauge("rollout_canary_weight_ratio", "canary share of the route's traffic as last seen (0-1)")
        desired = gauge("rollout_desired_canary_weight_ratio", "canary share the current step asks for (0-1)")
        promotions = CounterMetricFamily(f"{p}_promotions", "runs that ended Promoted", labels=list(LABELS))
        rollbacks = CounterMetricFamily(f"{p}_rollbacks", "runs that ended RolledBack", labels=list(LABELS))
        verdict = gauge("verdict_info", "1 per judged rollout; the verdict label is the last verdict", "verdict")
        checks = [gauge(name, help_text, "check") for name, help_text in _CHECKS]
        for (namespace, name), s in rows:
            labels = [namespace, name]
            if s.phase:
                info.add_metric([*labels, s.phase], 1)
            for family, number in ((step, s.step), (steps, s.steps), (weight, s.weight), (desired, s.desired)):
                if number is not None:
                    family.add_metric(labels, number)
            if s.counted:
                promotions.add_metric(labels, s.promotions)
                rollbacks.add_metric(labels, s.rollbacks)
            if s.verdict:
                verdict.add_metric([*labels, s.verdict], 1)
            for check, numbers in s.checks.items():
                for family, number in zip(checks, numbers, strict=True):
                    if number is not None:
                        family.add_metric([*labels, check], number)
        yield from (info, step, steps, weight, desired, promotions, rollbacks, verdict, *checks)


def _copy(s: Shown) -> Shown:
    return Shown(
        s.phase, s.step, s.steps, s.weight, s.desired, s.counted, s.promotions, s.rollbacks, s.verdict, dict(s.checks)
    )
