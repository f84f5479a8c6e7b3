"""Benchmark: queries per tick and tick latency of PrometheusProvider for 1..1,000 active rollouts
(cumulative counters read at one instant: requests, 5xx, sample times, latency buckets).

Owns its own stack: the synthetic exporter with two backends per rollout (2,000 for the largest
batch, ~48,000 series) scraped every 2 s by a real Prometheus on a free loopback port, both
stopped at the end. ``main()`` prints a markdown table; ``python -m tests.bench`` calls it. It
measures, it does not assert.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from rollout.core.readings import Outcome
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.prometheus import PrometheusProvider
from rollout.settings import PrometheusSettings
from tests.harness.exporter import TrafficExporter
from tests.harness.prometheus import PrometheusServer

SIZES = (1, 10, 100, 1000)
INTERVAL = 10.0
TICKS = 5
LAG = timedelta(seconds=3)  # read a little in the past, as the runtime does


def _batch(n: int) -> list[AnalysisRequest]:
    return [
        AnalysisRequest(
            key=f"bench/r{i}",
            namespace="bench",
            stable=f"svc{i}-v1",
            canary=f"svc{i}-v2",
            interval_seconds=INTERVAL,
            latency_bound_seconds=0.25,
        )
        for i in range(n)
    ]


def run(sizes: tuple[int, ...] = SIZES, ticks: int = TICKS) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    exporter = TrafficExporter(seed=1, tick_seconds=0.5, history_seconds=0)
    for i in range(max(sizes)):
        exporter.set_backend(f"svc{i}-v1", rps=4, error_rate=0.01)
        exporter.set_backend(f"svc{i}-v2", rps=2, error_rate=0.02)
    with exporter, PrometheusServer([exporter.address], scrape_interval="2s") as server:
        server.wait_for("envoy_cluster_upstream_rq_time_count", count=2 * max(sizes), timeout=60)
        time.sleep(4)
        provider = PrometheusProvider({"default": PrometheusSettings(url=server.url, timeout_seconds=30)})
        try:
            for n in sizes:
                batch = _batch(n)
                latencies, ok, sent = [], 0, 0.0
                for _ in range(ticks):
                    before = server.engine_queries()
                    started = time.perf_counter()
                    readings = provider.collect(batch, datetime.now(UTC) - LAG)
                    latencies.append((time.perf_counter() - started) * 1000)
                    sent = server.engine_queries() - before
                    ok = sum(r.outcome is Outcome.OK for r in readings.values())
                rows.append(
                    {
                        "rollouts": n,
                        "queries": provider.last_tick_queries,
                        "server_queries": sent,
                        "p50_ms": statistics.median(latencies),
                        "max_ms": max(latencies),
                        "ok": ok,
                    }
                )
        finally:
            provider.close()
    return rows


def table(rows: list[dict[str, float]]) -> str:
    lines = [
        "| active rollouts | queries per tick (provider / Prometheus) | unbatched would send | "
        "tick latency p50 (ms) | max (ms) | readings OK |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rollouts']:,.0f} | {r['queries']:.0f} / {r['server_queries']:.0f} | "
            f"{4 * r['rollouts']:,.0f} | {r['p50_ms']:.0f} | {r['max_ms']:.0f} | "
            f"{r['ok']:.0f}/{r['rollouts']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    print(
        f"## PrometheusProvider: queries per tick vs active rollouts "
        f"(latency SLO on, {TICKS} ticks each, real Prometheus, 2 s scrape)\n"
    )
    print(table(run()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
