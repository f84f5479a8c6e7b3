"""The world the judge benchmark runs in: Envoy gateway pods with cumulative counters, scraped by
Prometheus, read at every analysis tick, exactly as production feeds the daemon.

Owns the traffic model and nothing about judging. A batch of runs advances in lockstep (numpy over
runs; each run has its own route weight). Per run:

* ``PODS`` gateway pods (scrape targets) each get Poisson(rps/PODS) requests per second, split
  between canary and stable by the route's weight (per request); each keeps cumulative counters
  per backend: requests, 5xx, requests slower than the latency buckets at 250 ms and 500 ms
  (Envoy's buckets around a 300 ms bound).
* Rates change at 30 s blocks: per-arm overdispersion (each backend's rates multiplied by its own
  factor, uniform in ``[1-d, 1+d]``, per block), common-mode bursts (both backends' error rates
  multiplied for a few blocks), faults that apply only from some canary weight up.
* Prometheus scrapes each pod every ``scrape_s`` seconds (each pod with its own phase); a sample
  holds the counters at the scrape time. A reading at time T holds each pod's newest sample at or
  before T (what an instant query returns); ``rollout.core.readings.difference`` of consecutive
  readings gives the judged interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from rollout.core.readings import Outcome, Reading, TargetCounters

PODS = 2
BLOCK_S = 30.0
EPOCH = 1_767_225_600.0  # simulated time 0 is 2026-01-01T00:00:00Z
REQUESTS, ERRORS, SLOW, SLOW_ABOVE = range(4)
CANARY, STABLE = 0, 1
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Latency:
    """Shares of requests slower than the bucket below the bound (250 ms), the bound itself
    (300 ms, unobservable with Envoy's buckets) and the bucket above (500 ms), from a log-normal
    latency (median ``median_ms``) scaled by ``factor``."""

    above_250: float
    above_300: float
    above_500: float

    @classmethod
    def lognormal(cls, slow_share_300: float, median_ms: float = 120.0, factor: float = 1.0) -> Latency:
        normal = NormalDist()
        sigma = math.log(300.0 / median_ms) / normal.inv_cdf(1.0 - slow_share_300)

        def share(bound: float) -> float:
            return 1.0 - normal.cdf(math.log(bound / (median_ms * factor)) / sigma)

        return cls(share(250.0), share(300.0), share(500.0))


@dataclass(frozen=True)
class Burst:
    """Common-mode bursts: each 30 s block starts one with probability ``chance`` (when none is
    on); it lasts 1..``max_blocks`` blocks and multiplies both backends' error rates by ``factor``."""

    chance: float = 1 / 20
    max_blocks: int = 4
    factor: float = 4.0


@dataclass(frozen=True)
class World:
    """What the traffic looks like (per run)."""

    rps: float
    stable_error: float = 0.005
    canary_error_ratio: float = 1.0  # canary error rate / stable's, once the fault applies
    stable_latency: Latency = field(default_factory=lambda: Latency.lognormal(0.001))
    canary_latency: Latency | None = None  # None: as stable
    fault_from_weight: int = 0  # the canary's error ratio and latency apply from this weight up
    dispersion: float = 0.0  # per-arm per-block factor uniform in [1-d, 1+d]
    burst: Burst | None = None


class Traffic:
    """Counters, samples and readings of a batch of runs, advanced in lockstep."""

    def __init__(self, world: World, runs: int, scrape_s: float, rng: np.random.Generator) -> None:
        self.world, self.runs, self.scrape_s, self.rng = world, runs, scrape_s, rng
        self.phases = rng.uniform(0.0, scrape_s, PODS)
        self.counters = np.zeros((runs, PODS, 2, 4))
        self.samples = np.zeros((runs, PODS, 2, 4))
        self.sampled_at = np.full(PODS, -math.inf)
        self.now = -2 * scrape_s
        self.next_scrape = [self.now + phase for phase in self.phases]
        self.block = math.floor(self.now / BLOCK_S)
        self.factors = self._factors()
        self.burst_left = np.zeros(runs, dtype=np.int64)

    def _factors(self) -> FloatArray:
        d = self.world.dispersion
        if d <= 0:
            return np.ones((self.runs, 2))
        return self.rng.uniform(1 - d, 1 + d, (self.runs, 2))

    def _next_block(self) -> None:
        self.block += 1
        self.factors = self._factors()
        burst = self.world.burst
        if burst is not None:
            self.burst_left = np.maximum(self.burst_left - 1, 0)
            start = (self.burst_left == 0) & (self.rng.random(self.runs) < burst.chance)
            self.burst_left = np.where(start, self.rng.integers(1, burst.max_blocks + 1, self.runs), self.burst_left)

    def advance(self, until: float, weights: NDArray[np.int64]) -> None:
        """Serve traffic up to ``until`` at each run's canary weight (percent), scraping on the way."""
        while self.now < until:
            next_block = (self.block + 1) * BLOCK_S
            end = min(until, next_block, *self.next_scrape)
            self._serve(end - self.now, weights)
            self.now = end
            for pod, at in enumerate(self.next_scrape):
                if at <= end:
                    self.samples[:, pod] = self.counters[:, pod]
                    self.sampled_at[pod] = at
                    self.next_scrape[pod] = at + self.scrape_s
            if end >= next_block:
                self._next_block()

    def _serve(self, seconds: float, weights: NDArray[np.int64]) -> None:
        if seconds <= 0:
            return
        w, rng, runs = self.world, self.rng, self.runs
        total = rng.poisson(w.rps / PODS * seconds, (runs, PODS)).astype(np.float64)
        share = (weights / 100.0)[:, None]
        canary = rng.binomial(total.astype(np.int64), share).astype(np.float64)
        faulty = (weights >= w.fault_from_weight) & (weights > 0)
        common = np.ones(runs)
        if w.burst is not None:
            common = np.where(self.burst_left > 0, w.burst.factor, 1.0)
        canary_latency = w.canary_latency or w.stable_latency
        for arm, requests in ((CANARY, canary), (STABLE, total - canary)):
            error = w.stable_error * common * self.factors[:, arm]
            latency_factor = self.factors[:, arm]
            lat_250 = np.full(runs, w.stable_latency.above_250)
            lat_500 = np.full(runs, w.stable_latency.above_500)
            if arm == CANARY:
                error = np.where(faulty, error * w.canary_error_ratio, error)
                lat_250 = np.where(faulty, canary_latency.above_250, lat_250)
                lat_500 = np.where(faulty, canary_latency.above_500, lat_500)
            n = requests.astype(np.int64)
            errors = rng.binomial(n, np.clip(error, 0, 1)[:, None])
            p250 = np.clip(lat_250 * latency_factor, 0, 1)
            slow = rng.binomial(n, p250[:, None])
            ratio_500 = np.where(p250 > 0, np.clip(lat_500 * latency_factor, 0, 1) / np.maximum(p250, 1e-300), 0.0)
            slow_above = rng.binomial(slow, np.clip(ratio_500, 0, 1)[:, None])
            self.counters[:, :, arm, REQUESTS] += requests
            self.counters[:, :, arm, ERRORS] += errors
            self.counters[:, :, arm, SLOW] += slow
            self.counters[:, :, arm, SLOW_ABOVE] += slow_above

    def reading(self, run: int, custom: dict[str, float]) -> Reading:
        """What the metrics adapter reads for ``run`` now: each pod's newest sample."""

        def arm(index: int) -> dict[str, TargetCounters]:
            out = {}
            for pod in range(PODS):
                if math.isfinite(self.sampled_at[pod]):
                    c = self.samples[run, pod, index]
                    at = EPOCH + float(self.sampled_at[pod])
                    out[f"pod-{pod}"] = TargetCounters(
                        float(c[REQUESTS]), float(c[ERRORS]), at, float(c[SLOW]), float(c[SLOW_ABOVE])
                    )
            return out

        return Reading(
            Outcome.OK,
            datetime.fromtimestamp(EPOCH + self.now, UTC),
            canary=arm(CANARY),
            stable=arm(STABLE),
            custom=custom,
        )
