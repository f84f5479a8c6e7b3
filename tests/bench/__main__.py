"""``make bench``: every benchmark, each printing one markdown table.

- judge comparison (fixed seeds; simulated Envoy pods scraped by Prometheus, counts through the real
  ``difference()`` and judge): rollout vs Flagger-style vs Kayenta-style;
- Prometheus queries per tick and tick latency for 1..1,000 rollouts against a real Prometheus.
"""

from __future__ import annotations

import sys
import time

from tests.bench import judge_bench, prometheus_bench


def main() -> int:
    for name, bench in (("prometheus", prometheus_bench.main), ("judge", judge_bench.main)):
        started = time.monotonic()
        print(f"\n## {name} benchmark\n", flush=True)
        bench()
        print(f"\n({name} benchmark took {time.monotonic() - started:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
