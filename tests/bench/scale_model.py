"""A paper model of the daemon at 10k and 100k rollouts with shards, fed by the scale bench's own
measurements (it prints; it asserts nothing).

The model, per replica holding ``N / S`` of ``N`` rollouts in ``S`` shards (each replica runs the
same daemon; Kubernetes cannot filter a watch by a hash, so every replica caches every Rollout):

- CPU = ``c_tick * (N / S) / interval``  (judging its own rollouts once per interval)
  + ``c_echo * W``  (decoding the watch events of every status write in the cluster, W per second)
- RSS = ``base + m_cache * N + m_work * N / S``
- status writes per second, cluster-wide: ``W = N / flush + N * w_material / interval``
- Prometheus queries per tick: ``q * S`` (each replica batches its own rollouts: ``q`` queries per
  interval per endpoint and metric template, whatever N)
- API requests of an idle replica: lease renewals (``S / retry`` per second over all replicas)
  and two policy checks a minute; nothing per rollout.

Measured inputs (the bench's rows at its largest N): ``c_tick`` from the steady phase (daemon CPU
x interval / N; it includes decoding the echoes of its own writes), ``base`` from the smallest
N's idle RSS, ``m = (RSS - base) / N`` split into ``m_cache`` (what a standby replica holding no
shard keeps) and ``m_work`` (the rest), ``c_echo`` the standby's CPU per status write it watched,
``w_material`` from the steady phase's status writes above the flush rate, ``q`` from the steady
phase. What it leaves out: the API server's and etcd's own limits (on this 2-core
machine the API server, not the daemon, bounded how fast 1,000 runs could start), Prometheus'
cost per query (it grows with the backends in the regex), and GC pauses at 100k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

FLUSH = 60.0  # the daemon's default status_flush_seconds
RETRY = 2.0  # the default lease retry period


class Standby(Protocol):
    @property
    def n(self) -> int: ...
    @property
    def cpu(self) -> float: ...
    @property
    def rss_mib(self) -> float: ...
    @property
    def writes_per_second(self) -> float: ...


@dataclass(frozen=True)
class Inputs:
    c_tick: float  # core-seconds per rollout per judged tick
    c_echo: float  # core-seconds per watched status write
    base: float  # MiB
    m_cache: float  # MiB per cached Rollout
    m_work: float  # MiB per owned rollout
    w_material: float  # material status writes per rollout per tick
    q: float  # Prometheus queries per tick, one replica


def inputs(rows: Sequence[Any], standbys: Sequence[Standby]) -> Inputs | None:
    """The model's inputs from the bench's rows and its standby replicas (holding no shard)."""
    steady = [r for r in rows if r.phase == "steady" and r.n >= 100]
    idle = [r for r in rows if r.phase == "idle"]
    if not steady or not idle:
        return None
    big = max(steady, key=lambda r: r.n)
    base = min(idle, key=lambda r: r.n).rss_mib if min(r.n for r in idle) <= 10 else 70.0
    ticks_per_second = big.n / big.interval
    c_tick = big.daemon_cpu / max(ticks_per_second, 1e-9)
    flush_writes = big.n * big.interval / FLUSH  # per tick
    w_material = max(0.0, big.status_writes[0] - flush_writes) / big.n
    m = max(0.0, big.rss_mib - base) / big.n
    standby = next((s for s in standbys if s.n == big.n), None)
    if standby is None:
        return None
    m_cache = min(m, max(0.0, standby.rss_mib - base) / big.n)
    c_echo = standby.cpu / standby.writes_per_second if standby.writes_per_second else 0.0
    return Inputs(c_tick, c_echo, base, m_cache, m - m_cache, w_material, big.queries[0])


def project(i: Inputs, n: int, shards: int, interval: float, flush: float = FLUSH) -> dict[str, float]:
    owned = n / shards
    writes = n / flush + n * i.w_material / interval
    return {
        "cpu": i.c_tick * owned / interval + i.c_echo * writes,
        "rss": i.base + i.m_cache * n + i.m_work * owned,
        "writes": writes,
        "queries": i.q * shards,
        "leases": shards / RETRY,
    }


def print_model(rows: Sequence[Any], standbys: Sequence[Standby]) -> None:
    i = inputs(rows, standbys)
    if i is None:
        print("(no steady, idle and standby measurements at N >= 100: no model)")
        return
    print("## Extrapolation (a model, not a measurement)\n")
    print(
        f"Inputs measured above: {i.c_tick * 1000:.2f} ms of daemon CPU per rollout per judged tick, "
        f"{i.c_echo * 1000:.2f} ms per status write watched (the standby); "
        f"base RSS {i.base:.0f} MiB, {i.m_cache * 1024:.0f} KiB per cached Rollout and {i.m_work * 1024:.0f} KiB "
        f"per owned rollout; {i.w_material:.3f} material status writes per rollout per tick; "
        f"{i.q:.0f} Prometheus queries per tick per replica.\n"
    )
    print(
        "| N | interval | status_flush_seconds | shards (replicas) | CPU per replica (cores) | "
        "RSS per replica (MiB) | status writes/s (cluster) | Prometheus queries per tick (cluster) | "
        "lease requests/s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, interval, flush in (
        (10_000, 30.0, FLUSH),
        (10_000, 30.0, 600.0),
        (100_000, 30.0, FLUSH),
        (100_000, 30.0, 600.0),
    ):
        for shards in _shard_counts(i, n, interval, flush):
            p = project(i, n, shards, interval, flush)
            print(
                f"| {n:,} | {interval:g} s | {flush:g} | {shards} | {p['cpu']:.2f} | {p['rss']:,.0f} | "
                f"{p['writes']:,.0f} | {p['queries']:.0f} | {p['leases']:.1f} |"
            )
    print(
        "\nReading: the judging work splits across shards; the cache and the watch do not (every "
        "replica caches every Rollout and decodes every status write). The status flush is the "
        "largest steady API load (N / status_flush_seconds writes per second) and, through the "
        "watch, a cost on every replica: at 10k and beyond raise `status_flush_seconds` (600 s), "
        "which delays only the judge's running numbers in status, never a decision."
    )


def _shard_counts(i: Inputs, n: int, interval: float, flush: float) -> list[int]:
    """One replica, and the fewest shards (up to 64) that keep each replica under half a core."""
    fits = [s for s in range(1, 65) if project(i, n, s, interval, flush)["cpu"] <= 0.5]
    return sorted({1, fits[0] if fits else 64})
