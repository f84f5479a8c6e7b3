"""An in-memory metrics provider for the simulator and tests: synthetic traffic per backend with
settable error rate, slow share and outages, split by the route's live weights.

Owns nothing but arithmetic on a seeded random generator, so a simulation is reproducible. It
honours the MetricsProvider contract: missing traffic is reported as such, never as zeros.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rollout.core.states import ArmCounts, MetricsSample, Outcome
from rollout.metrics.base import AnalysisRequest


@dataclass
class BackendProfile:
    """How one backend behaves: the share of its requests that fail and that are slower than the SLO."""

    error_rate: float = 0.002
    slow_share: float = 0.002
    serving: bool = True  # False: the backend's series are absent


class MemoryMetrics:
    """Synthetic counts: ``rps`` total requests per second, split by ``share(backend)`` in [0, 1]."""

    def __init__(self, *, rps: float, share: Callable[[str], float], seed: int = 0) -> None:
        self.rps = rps
        self._share = share
        self._rng = random.Random(seed)
        self.profiles: dict[str, BackendProfile] = {}
        self.unavailable = False
        self.custom_values: dict[str, float] = {}
        self.calls = 0

    def profile(self, backend: str) -> BackendProfile:
        return self.profiles.setdefault(backend, BackendProfile())

    def collect(self, batch: Sequence[AnalysisRequest], at: datetime) -> dict[str, MetricsSample]:
        del at
        self.calls += 1
        return {req.key: self._sample(req) for req in batch}

    def _sample(self, req: AnalysisRequest) -> MetricsSample:
        if self.unavailable:
            return MetricsSample(outcome=Outcome.UNAVAILABLE, detail="metrics backend unreachable (simulated)")
        arms = {name: self._arm(name, req.window_seconds) for name in (req.canary, req.stable)}
        canary, stable = arms[req.canary], arms[req.stable]
        custom = {m.name: self.custom_values[m.name] for m in req.custom if m.name in self.custom_values}
        if canary is None and stable is None:
            return MetricsSample(
                outcome=Outcome.NO_DATA,
                detail="no series for either backend",
                window_seconds=req.window_seconds,
            )
        if canary is None or stable is None:
            missing = req.canary if canary is None else req.stable
            return MetricsSample(
                outcome=Outcome.PARTIAL,
                canary=canary,
                stable=stable,
                custom=custom,
                window_seconds=req.window_seconds,
                detail=f"no series for {missing}",
            )
        if canary.requests == 0:
            return MetricsSample(
                outcome=Outcome.ZERO_TRAFFIC,
                canary=canary,
                stable=stable,
                custom=custom,
                window_seconds=req.window_seconds,
                detail=f"no requests to {req.canary}",
            )
        return MetricsSample(
            outcome=Outcome.OK, canary=canary, stable=stable, custom=custom, window_seconds=req.window_seconds
        )

    def _arm(self, backend: str, window: float) -> ArmCounts | None:
        profile = self.profile(backend)
        if not profile.serving:
            return None
        requests = self._poisson(self.rps * self._share(backend) * window)
        errors = self._binomial(requests, profile.error_rate)
        slow = self._binomial(requests, profile.slow_share)
        return ArmCounts(float(requests), float(errors), float(slow))

    def _poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        if mean > 50:
            return max(0, round(self._rng.gauss(mean, math.sqrt(mean))))
        threshold, k, product = math.exp(-mean), 0, self._rng.random()
        while product > threshold:
            k += 1
            product *= self._rng.random()
        return k

    def _binomial(self, n: int, p: float) -> int:
        if n <= 0 or p <= 0:
            return 0
        if p >= 1:
            return n
        mean = n * p
        if mean > 50 and n * (1 - p) > 50:
            return min(n, max(0, round(self._rng.gauss(mean, math.sqrt(mean * (1 - p))))))
        if n <= 1000:
            return sum(1 for _ in range(n) if self._rng.random() < p)
        return min(n, self._poisson(mean))
