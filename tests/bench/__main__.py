"""``make bench``: every benchmark, each printing markdown tables.

- Prometheus queries per tick and tick latency for 1..1,000 rollouts against a real Prometheus;
- judge comparison (fixed seeds; simulated Envoy pods scraped by Prometheus, counts through the real
  ``difference()`` and judge): rollout vs Flagger-style vs Kayenta-style;
- time from a fault to stable 100% on the live stack, for analysis intervals of 5 s and 30 s;
- the live daemon at scale on the real stack: N = 1, 100 and 1,000 rollouts at a 5 s interval
  (about 10 minutes; the 10,000-rollout run is ``python -m tests.bench.scale_bench --sizes '' --large``).

``python -m tests.bench --only scale`` (or ``judge``, ``prometheus``, ``fault``) runs one of them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from tests.bench import fault_bench, judge_bench, prometheus_bench, scale_bench

BENCHES: dict[str, Callable[[], None]] = {
    "prometheus": prometheus_bench.main,
    "judge": judge_bench.main,
    "fault": fault_bench.main,
    "scale": lambda: scale_bench.main([]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description="run the benchmarks")
    parser.add_argument("--only", choices=sorted(BENCHES), action="append", help="run only this one (repeatable)")
    args = parser.parse_args(argv)
    for name in args.only or list(BENCHES):
        started = time.monotonic()
        print(f"\n## {name} benchmark\n", flush=True)
        BENCHES[name]()
        print(f"\n({name} benchmark took {time.monotonic() - started:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
