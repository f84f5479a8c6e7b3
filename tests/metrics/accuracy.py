"""The accuracy matrix of issue 15: judged counts against the exact truth, on a real Prometheus, for
scrape intervals 5/15/30/60 s and judging intervals 10/30/60 s.

Owns one hour of deterministic traffic (two gateway pods, a stable and a canary backend; each
scrape interval is one ``job`` with its own offsets, the second pod scraped later than the first)
backfilled into a real Prometheus, and the replay of what the engine does with it: read every
rollout at each judging instant (a few seconds off the scrape grid), ``difference()`` each reading
from the last one absorbed, keep the last absorbed reading when there is no newer sample ("held":
nothing new, nothing lost, the next interval covers it). For each combination it reports:

- ``mismatched``: absorbed intervals whose counts differ from the truth between their sample times
  (must be 0: exact counts, no overlap, no gap);
- ``error``: the run's judged canary requests against what the canary served between the first and
  the last judging instant (wall clock); the only difference is the unseen tail after each end's
  last scrape, at most one scrape interval at each end;
- ``increase()``: the same run judged with ``sum(increase(x[interval]))`` at the same instants, the
  method this replaces, for comparison: its run total, how many intervals had no result (fewer
  than two samples in the window), and how far each interval's count is from what was served in
  it (extrapolation from the samples inside the window).

``python -m tests.metrics.accuracy`` prints the table.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rollout.core.readings import NOTHING, Outcome, Reading, difference
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.prometheus import PrometheusProvider
from rollout.policy.models import MetricLabels
from rollout.settings import PrometheusSettings
from tests.harness.backfill import Event, History, Job, serve
from tests.harness.prometheus import find_binary

SCRAPES = (5, 15, 30, 60)
INTERVALS = (10, 30, 60)
JUDGED = 3600  # one hour of judging
FIRST = 180  # first judging instant, seconds after the start of the traffic
SKEW = 3.7  # judging instants are this far off the whole seconds the scrapes happen on
JOBS = [Job(f"s{s}", s, offset_seconds=(3 * s) // 5, stagger_seconds=(2 * s) // 5) for s in SCRAPES]
LATENCY_BOUND = 0.3  # between Envoy's 250 and 500 ms buckets
Query = Callable[[str, float], list[dict[str, Any]]]


@dataclass(frozen=True)
class Row:
    scrape: int
    interval: int
    absorbed: int
    held: int
    mismatched: int
    judged: float  # canary requests over the run
    served: float  # canary requests served between the first and last judging instant
    increase: float  # the same with increase()
    increase_empty: int  # increase() intervals with no result (fewer than two samples in the window)
    increase_deviation: float  # mean |increase() - served in (t - interval, t]| / mean served, where it had a result

    @property
    def error(self) -> float:
        return self.judged / self.served - 1

    @property
    def increase_error(self) -> float:
        return self.increase / self.served - 1


def history(judged: int = JUDGED) -> History:
    """Stable at ~100 and canary at ~20 req/s per pod, each pod's rate redrawn every 37 s within
    +-50% (so that which seconds a count covers matters)."""
    h = History(jobs=JOBS, pods=2, seed=15)
    h.backend("acc-v1", rps=100, error_rate=0.01, latency_median_ms=30, latency_p99_ms=300)
    h.backend("acc-v2", rps=20, error_rate=0.02, latency_median_ms=40, latency_p99_ms=600)
    rng = random.Random(15)
    changes = [
        Event(t, "set", backend, pods=(pod,), changes={"rps": base * rng.uniform(0.5, 1.5)})
        for t in range(37, FIRST + judged + 60, 37)
        for backend, base in (("acc-v1", 100), ("acc-v2", 20))
        for pod in (0, 1)
    ]
    h.run(FIRST + judged + 60, changes)
    return h


def _request(job: Job) -> AnalysisRequest:
    return AnalysisRequest(
        key=f"acc/{job.name}",
        namespace="acc",
        stable="acc-v1",
        canary="acc-v2",
        interval_seconds=10,
        latency_bound_seconds=LATENCY_BOUND,
        labels=MetricLabels(selector=f'job="{job.name}"'),
    )


def measure(binary: str | None = None, judged: int = JUDGED) -> tuple[list[Row], dict[str, float]]:
    """Every combination's row over ``judged`` seconds of judging, and timings (seconds) of the steps."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    h = history(judged)
    timings["generate"] = time.perf_counter() - started
    started = time.perf_counter()
    server = serve(h, binary=binary or find_binary())
    timings["backfill+start"] = time.perf_counter() - started
    provider = PrometheusProvider({"default": PrometheusSettings(url=server.url)})
    try:
        started = time.perf_counter()
        requests = [_request(job) for job in JOBS]
        instants = [h.start + FIRST + k * 10 + SKEW for k in range(judged // 10 + 1)]
        readings = [provider.collect(requests, datetime.fromtimestamp(t, UTC)) for t in instants]
        timings["readings"] = time.perf_counter() - started
        started = time.perf_counter()
        rows = [
            _row(h, server.query, job, interval, instants=instants, readings=[r[f"acc/{job.name}"] for r in readings])
            for job in JOBS
            for interval in INTERVALS
        ]
        timings["increase"] = time.perf_counter() - started
    finally:
        provider.close()
        server.close()
        h.close()
    return rows, timings


def _row(h: History, query: Query, job: Job, interval: int, *, instants: list[float], readings: list[Reading]) -> Row:
    step = interval // 10
    chosen = list(zip(instants, readings, strict=True))[::step]
    (first_at, last), absorbed, held, mismatched, judged = chosen[0], 0, 0, 0, NOTHING
    assert last.outcome is Outcome.OK, last.detail
    for _, reading in chosen[1:]:
        assert reading.outcome is Outcome.OK, reading.detail
        between = difference(last, reading)
        if between is None:
            held += 1
            continue
        truth = h.truth(job.name, "acc-v2", reading.taken_at.timestamp()) - h.truth(
            job.name, "acc-v2", last.taken_at.timestamp()
        )
        slow_truth = truth.slower(250.0), truth.slower(500.0)
        if (between.canary.requests, between.canary.errors) != (truth.requests, truth.errors) or (
            between.canary.slow,
            between.canary.slow_above,
        ) != slow_truth:
            mismatched += 1
        absorbed, judged, last = absorbed + 1, judged + between.canary, reading
    last_at = chosen[-1][0]
    served = h.served("acc-v2", last_at) - h.served("acc-v2", first_at)
    increases: list[float | None] = []
    for t, _ in chosen[1:]:
        result = query(
            f'sum(increase(envoy_cluster_upstream_rq{{job="{job.name}", envoy_cluster_name="acc-v2"}}[{interval}s]))', t
        )
        increases.append(float(result[0]["value"][1]) if result else None)
    wall = [h.served("acc-v2", t) - h.served("acc-v2", t - interval) for t, _ in chosen[1:]]
    seen = [(inc, w) for inc, w in zip(increases, wall, strict=True) if inc is not None]
    deviation = sum(abs(inc - w) for inc, w in seen) / sum(w for _, w in seen) if seen else math.nan
    return Row(
        job.scrape_seconds,
        interval,
        absorbed,
        held,
        mismatched,
        judged.requests,
        served,
        increase=sum(inc for inc, _ in seen),
        increase_empty=len(increases) - len(seen),
        increase_deviation=deviation,
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| scrape | interval | intervals absorbed | held (no newer sample) | mismatched | judged canary requests "
        "| served (wall clock) | error | increase(): error, empty intervals, per-interval deviation |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.scrape} s | {r.interval} s | {r.absorbed} | {r.held} | {r.mismatched} | {r.judged:,.0f} "
            f"| {r.served:,.0f} | {r.error:+.3%} | {r.increase_error:+.1%}, {r.increase_empty}, "
            f"{r.increase_deviation:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    rows, timings = measure()
    print("## Judged counts vs truth on a real Prometheus (1 h backfilled, 2 pods, canary ~40 req/s)\n")
    print(table(rows))
    print("\n" + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


if __name__ == "__main__":
    main()
