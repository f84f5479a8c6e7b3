"""Benchmark: the live daemon on the real stack with N rollouts, through four phases, and a model
that extrapolates the measurements to 10k and 100k rollouts with shards.

For each (N, interval) a fresh ``fleet.Fleet`` (kube-apiserver + etcd with an audit log of the
daemon's requests, the cheap exporter with shared backend pairs, Prometheus, the daemon as a
subprocess) goes through:

- ``start``: the daemon starts with N Rollouts waiting; ends when every one is Progressing at 10%;
- ``steady``: after a minute (at least four intervals) unmeasured, while the first verdicts at the
  new weight settle, ``ticks`` analysis intervals of N active rollouts judged every interval;
- ``finish``: one ``promote-full`` RolloutCommand per rollout; ends when all are Promoted at 100%;
- ``idle``: ``ticks`` intervals of N Promoted rollouts (nothing to do).

Per phase it prints the daemon's CPU (cores) and peak RSS, the API server's CPU, Prometheus
queries per tick (Prometheus' own ``prometheus_http_requests_total{handler="/api/v1/query"}``),
the daemon's API requests per tick from the audit log (lease renewals apart), status writes per
tick, the due-to-run lag p50/p99/max from ``rolloutd_scheduler_lag_seconds`` and reconciles per
tick. A "tick" is one analysis interval; per-tick figures are means over the phase's whole
intervals (max: the busiest one). It measures and prints; it asserts nothing.

Run alone: ``python -m tests.bench.scale_bench [--sizes 100,1000] [--interval 5] [--large]``.
"""

from __future__ import annotations

import argparse
import math
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rollout.core.states import CommandKind
from tests.bench.scale_model import print_model
from tests.harness.fleet import DAEMON_USER, Fleet, Probe, Snapshot, cpu_seconds, max_bucket, quantile, rss_mib
from tests.harness.stack import Daemon, wait_until

SIZES = (1, 100, 1000)
INTERVAL = 5.0
TICKS = 6
SETTLE = 60.0  # seconds after every run started before steady state is measured
LARGE = (10_000, 30.0, 4)  # N, interval, ticks: the largest size this 2-core machine was run at
STANDBY_USER = "rollout-standby"
LARGE_FLUSH = 600.0  # status_flush_seconds for it: flushes cost N / flush_seconds status writes per second

BEFORE = """Before (issue 16, same machine, same stack):

| N | interval | daemon CPU | RSS | Prometheus queries per tick | API requests per tick | ticks on time? |
|---:|---:|---:|---:|---:|---:|---|
| 1 | 5 s | 0.006 core | 71 MB | 4 | 10 | yes |
| 100 | 5 s | 0.18 core | 86 MB | 4 steady; 45-67 while runs start | 410-440 | yes |
| 1,000 | 30 s | 0.32-0.45 core (+0.69 kube-apiserver) | 158 -> 278 MB | 4 steady; 4,000 at start | 1,200-5,400 | yes |
| 1,000 | 5 s | 0.52 core | 304 MB | - | - | no: 18 s median between ticks |
"""


@dataclass(frozen=True)
class Standby:
    """A replica holding no shard through the steady phase: what caching every Rollout costs."""

    n: int
    cpu: float  # cores
    rss_mib: float
    writes_per_second: float  # the status writes whose watch events it decoded


@dataclass(frozen=True)
class Row:
    n: int
    interval: float
    phase: str
    seconds: float
    daemon_cpu: float  # cores
    apiserver_cpu: float  # cores
    rss_mib: float  # peak in the phase
    queries: tuple[float, float]  # per tick: mean, max
    requests: tuple[float, float]  # daemon's API requests per tick (no leases): mean, max
    leases: float  # lease requests per tick
    status_writes: tuple[float, float]  # per tick: mean, max
    route_writes: int  # in the phase
    lag: tuple[float, float, float]  # p50, p99, highest bucket (seconds)
    reconciles: float  # per tick
    verbs: str  # the daemon's requests in the phase by verb and resource


def _per_tick(times: list[float], start: float, end: float, interval: float) -> tuple[float, float]:
    """Mean and max count per whole interval slot inside [start, end)."""
    first, last = math.ceil(start / interval), math.floor(end / interval)
    if last <= first:  # shorter than one whole slot: the phase's count is its ticks' count
        return float(len(times)), float(len(times))
    slots = Counter(int(t // interval) for t in times if first * interval <= t < last * interval)
    counts = [slots.get(k, 0) for k in range(first, last)]
    return statistics.fmean(counts), float(max(counts))


def _row(probe: Probe, phase: str, a: Snapshot, b: Snapshot, inside: list[Snapshot]) -> Row:
    fleet, interval, seconds = probe.fleet, probe.fleet.interval, b.at - a.at
    requests = probe.requests(a.at, b.at)
    plain = [r for r in requests if r.resource != "leases" and r.verb != "watch"]
    statuses = [r.received for r in plain if r.what == "rollouts/status" and r.write]
    routes = [r for r in plain if r.resource == "gatewayroutes" and r.write]
    leases = [r for r in requests if r.resource == "leases"]
    verbs = Counter(f"{r.verb} {r.what}" for r in plain)
    query_times: list[float] = []
    for x, y in zip([a, *inside], [*inside, b], strict=True):
        query_times += [y.at] * round(y.queries - x.queries)
    return Row(
        n=fleet.n,
        interval=interval,
        phase=phase,
        seconds=seconds,
        daemon_cpu=(b.daemon_cpu - a.daemon_cpu) / seconds,
        apiserver_cpu=(b.apiserver_cpu - a.apiserver_cpu) / seconds,
        rss_mib=max(s.daemon_rss for s in [a, *inside, b]),
        queries=_per_tick(query_times, a.at, b.at, interval),
        requests=_per_tick([r.received for r in plain], a.at, b.at, interval),
        leases=len(leases) * interval / seconds,
        status_writes=_per_tick(statuses, a.at, b.at, interval),
        route_writes=len(routes),
        lag=(quantile(0.5, a.lag, b.lag), quantile(0.99, a.lag, b.lag), max_bucket(a.lag, b.lag)),
        reconciles=(b.reconciles - a.reconciles) * interval / seconds,
        verbs=", ".join(f"{v} {k}" for k, v in verbs.most_common(6)),
    )


def run(
    n: int,
    interval: float,
    ticks: int = TICKS,
    *,
    flush: float | None = None,
    profile: Path | None = None,
    gil: bool = False,
) -> tuple[list[Row], Standby]:
    """The four phases at ``n`` rollouts judged every ``interval`` seconds (``flush``: the daemon's
    ``status_flush_seconds``, default its own; ``profile``: a directory where py-spy writes the
    daemon's collapsed stacks, one file per phase), and a standby replica through the steady phase."""
    with Fleet(n, interval, users=(DAEMON_USER, STANDBY_USER)) as fleet:
        assert fleet.prometheus is not None
        created = fleet.create()
        fleet.prometheus.wait_for("envoy_cluster_upstream_rq_time_count", count=2 * min(n, 50), timeout=60)
        print(f"  N={n:,}: {2 * n:,} objects created in {created:.0f}s; starting the daemon", flush=True)
        daemon = fleet.daemon(**({"ROLLOUT_STATUS_FLUSH_SECONDS": f"{flush:g}"} if flush else {}))
        probe = Probe(fleet, daemon)
        sampling = threading.Event()
        marks: dict[str, Snapshot] = {}

        def sample() -> None:
            while not sampling.wait(min(interval, 5.0)):
                probe.snap(metrics=False)

        sampler = threading.Thread(target=sample, daemon=True)
        wait_until(lambda: daemon.get("/healthz")[0] == 200, timeout=60, what="the daemon listening")
        marks["begin"] = probe.snap()
        sampler.start()
        spy = _Spy(daemon, profile, f"n{n}", gil=gil)
        try:
            spy.start("start")
            fleet.wait_phase("Progressing@10", timeout=120 + n * 0.1)
            marks["started"] = probe.snap()
            standby = fleet.daemon("standby", user=STANDBY_USER)  # holds no lease: it only caches
            time.sleep(max(4 * interval, SETTLE))  # first verdicts at the new weight settle, unmeasured
            marks["settled"] = probe.snap()
            assert standby.process is not None
            standby_cpu = cpu_seconds(standby.process.pid)
            spy.start("steady")
            time.sleep(ticks * interval)
            marks["steady"] = probe.snap()
            standby_cpu = (cpu_seconds(standby.process.pid) - standby_cpu) / (marks["steady"].at - marks["settled"].at)
            standby_rss = rss_mib(standby.process.pid)
            standby.terminate(timeout=30)
            spy.start("finish")
            fleet.command_all(CommandKind.PROMOTE_FULL)
            fleet.wait_phase("Promoted@100", timeout=120 + n * 0.1)
            marks["finished"] = probe.snap()
            spy.start("idle")
            time.sleep(ticks * interval)
            marks["idle"] = probe.snap()
            spy.stop()
        except TimeoutError:
            print(daemon.tail(20), file=sys.stderr)
            raise
        finally:
            spy.stop()
            sampling.set()
            sampler.join(timeout=10)
        rows = []
        for phase, start, end in (
            ("start", "begin", "started"),
            ("steady", "settled", "steady"),
            ("finish", "steady", "finished"),
            ("idle", "finished", "idle"),
        ):
            a, b = marks[start], marks[end]
            inside = [s for s in probe.samples if a.at < s.at < b.at]
            rows.append(_row(probe, phase, a, b, inside))
        steady = next(r for r in rows if r.phase == "steady")
        return rows, Standby(n, standby_cpu, standby_rss, steady.status_writes[0] / interval)


class _Spy:
    """py-spy recording the daemon's CPU samples per phase (when asked to)."""

    def __init__(self, daemon: Daemon, where: Path | None, prefix: str, *, gil: bool = False) -> None:
        self.daemon, self.where, self.prefix, self.gil = daemon, where, prefix, gil
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, phase: str) -> None:
        self.stop()
        if self.where is None or self.daemon.process is None:
            return
        self.where.mkdir(parents=True, exist_ok=True)
        out = self.where / f"{self.prefix}-{phase}.txt"
        self.process = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(self.daemon.process.pid),
                "--format",
                "raw",
                "--rate",
                "50",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
            self.process = None


def _num(x: float, digits: int = 0) -> str:
    return "-" if math.isnan(x) else f"{x:,.{digits}f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| N | interval | phase | seconds | daemon CPU (cores) | RSS peak (MiB) | kube-apiserver CPU | "
        "Prometheus queries per tick (mean / max) | API requests per tick, no leases (mean / max) | "
        "lease requests per tick | status writes per tick (mean / max) | route writes | "
        "lag p50 / p99 / max bucket (s) | reconciles per tick |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.n:,} | {r.interval:g} s | {r.phase} | {r.seconds:.0f} | {r.daemon_cpu:.3f} | {r.rss_mib:.0f} | "
            f"{r.apiserver_cpu:.2f} | {_num(r.queries[0], 1)} / {_num(r.queries[1])} | "
            f"{_num(r.requests[0], 1)} / {_num(r.requests[1])} | {r.leases:.1f} | "
            f"{_num(r.status_writes[0], 1)} / {_num(r.status_writes[1])} | {r.route_writes:,} | "
            f"{_num(r.lag[0], 3)} / {_num(r.lag[1], 3)} / {_num(r.lag[2], 2)} | {r.reconciles:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the live daemon on the real stack with N rollouts")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated N (default %(default)s)")
    parser.add_argument("--interval", type=float, default=INTERVAL, help="analysis interval, seconds")
    parser.add_argument("--ticks", type=int, default=TICKS, help="intervals measured in steady and idle phases")
    parser.add_argument(
        "--large",
        action="store_true",
        help=f"also N={LARGE[0]:,} at interval {LARGE[1]:g} s (status_flush_seconds {LARGE_FLUSH:g})",
    )
    parser.add_argument("--flush", type=float, help="the daemon's status_flush_seconds for --sizes (default: its own)")
    parser.add_argument("--verbs", action="store_true", help="print the daemon's requests by verb per phase")
    parser.add_argument("--profile", type=Path, help="write the daemon's py-spy samples per phase into this directory")
    parser.add_argument("--gil", action="store_true", help="profile only the thread holding the GIL (CPU)")
    args = parser.parse_args(argv)
    runs = [(int(n), args.interval, args.ticks, args.flush) for n in args.sizes.split(",") if n.strip()]
    if args.large:
        runs.append((*LARGE, LARGE_FLUSH))
    print("## The daemon at scale on the real stack (kube-apiserver + etcd, Prometheus, cheap exporter)\n")
    rows: list[Row] = []
    standbys: list[Standby] = []
    for n, interval, ticks, flush in runs:
        measured, standby = run(n, interval, ticks, flush=flush, profile=args.profile, gil=args.gil)
        rows += measured
        standbys.append(standby)
    print()
    print(table(rows))
    if args.verbs:
        print()
        for r in rows:
            print(f"- N={r.n:,} {r.phase}: {r.verbs or 'none'}")
    print()
    print(
        "A standby replica (no shard, every Rollout cached) through the steady phase: "
        + "; ".join(
            f"N={s.n:,}: {s.cpu:.3f} core, {s.rss_mib:.0f} MiB, {s.writes_per_second:.1f} status writes/s watched"
            for s in standbys
        )
        + "\n"
    )
    print(BEFORE)
    print_model(rows, standbys)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
