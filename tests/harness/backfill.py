"""Backfilled Prometheus: a deterministic counter history of synthetic Envoy gateway pods, stored in a
real Prometheus TSDB without waiting for wall-clock scrapes.

Owns the history: ``pods`` synthetic exporters (``tests.harness.exporter``, one per gateway pod,
``auto=False``) advanced one ``tick_seconds`` at a time from ``start``; every ``Job`` samples every
pod at its own scrape interval (pod ``i`` at ``offset + i * stagger`` past each multiple of the
interval, whole seconds), labelled ``job`` and ``instance`` as Prometheus would; ``Event``s change,
remove or restart a backend right *after* the samples of their instant. The samples are written as
OpenMetrics text, turned into TSDB blocks by ``promtool tsdb create-blocks-from openmetrics`` in
the data dir of a ``PrometheusServer`` with no scrape targets (retention 100 years, so nothing
old is dropped), and the real server then answers queries at historical instants.

Next to the samples it keeps the exact truth per job, pod and backend at every sample: lifetime
totals that a restart does not reset (``truth``). Standard library and the harness only.
"""

from __future__ import annotations

import bisect
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.harness.exporter import ENVOY_BUCKETS_MS, TrafficExporter, series_labels
from tests.harness.prometheus import PrometheusServer

START = 1_700_000_040
"""Default first instant of a history (Unix seconds; a multiple of 60, in November 2023)."""


@dataclass(frozen=True)
class Job:
    """One scrape configuration: every pod sampled every ``scrape_seconds``."""

    name: str
    scrape_seconds: int
    offset_seconds: int = 0
    stagger_seconds: int = 0  # pod i is sampled i * stagger seconds after pod 0

    def samples_at(self, t: int, pod: int, start: int) -> bool:
        return (t - start - self.offset_seconds - pod * self.stagger_seconds) % self.scrape_seconds == 0


@dataclass(frozen=True)
class Event:
    """Something that happens to a backend right after the samples at ``at`` (seconds since the start)."""

    at: int
    action: Literal["set", "remove", "reset"]
    backend: str
    pods: tuple[int, ...] | None = None  # None: every pod
    changes: Mapping[str, Any] = field(default_factory=dict)  # profile fields for "set"


@dataclass(frozen=True)
class Truth:
    """Lifetime totals of one backend (summed over the pods asked for), never reset."""

    requests: float
    errors: float
    slower_than_ms: Mapping[float, float]  # bucket bound (ms) -> requests slower than it

    def slower(self, bound_ms: float | None) -> float:
        """Requests slower than ``bound_ms``; every request for None (no bucket below)."""
        return self.requests if bound_ms is None else self.slower_than_ms[bound_ms]

    def __sub__(self, other: Truth) -> Truth:
        return Truth(
            self.requests - other.requests,
            self.errors - other.errors,
            {b: n - other.slower_than_ms[b] for b, n in self.slower_than_ms.items()},
        )


_ZERO = Truth(0.0, 0.0, dict.fromkeys(ENVOY_BUCKETS_MS, 0.0))


def _plus(a: Truth, b: Truth) -> Truth:
    return Truth(
        a.requests + b.requests,
        a.errors + b.errors,
        {k: a.slower_than_ms[k] + b.slower_than_ms[k] for k in a.slower_than_ms},
    )


def _of(snapshot: Mapping[str, Any]) -> Truth:
    slower = snapshot["slower_than_ms"]
    return Truth(
        float(snapshot["requests"]), float(snapshot["errors"]), {b: float(slower[_le(b)]) for b in ENVOY_BUCKETS_MS}
    )


def _le(bound: float) -> str:
    return f"{bound:.32g}"


class History:
    """The traffic of ``pods`` gateway pods from ``start``, sampled by ``jobs``."""

    def __init__(
        self, *, jobs: Sequence[Job], pods: int = 1, seed: int = 0, start: int = START, tick_seconds: int = 1
    ) -> None:
        self.jobs = list(jobs)
        self.start = start
        self.now = start
        self.tick_seconds = tick_seconds
        self.pods = [TrafficExporter(seed=seed * 101 + i, auto=False, history_seconds=0) for i in range(pods)]
        self._lines: dict[str, list[str]] = {}
        self._previous: dict[tuple[int, str], Truth] = {}  # (pod, backend) -> its exporter totals at the last tick
        self._lifetime: dict[tuple[int, str], Truth] = {}
        # (job, pod, backend) -> [(sample time, lifetime totals)]
        self._truths: dict[tuple[str, int, str], list[tuple[int, Truth]]] = {}
        self._ticks: dict[str, list[tuple[int, float]]] = {}  # backend -> [(tick, lifetime requests, all pods)]

    def backend(self, name: str, *, pods: Iterable[int] | None = None, **profile: Any) -> None:
        """Create a backend on some pods (default: all) with an exporter profile (rps per pod...)."""
        for i in range(len(self.pods)) if pods is None else pods:
            self.pods[i].set_backend(name, **profile)

    def run(self, seconds: int, events: Iterable[Event] = ()) -> None:
        """Generate ``seconds`` more of traffic, sampling and applying events on the way."""
        due: dict[int, list[Event]] = {}
        for event in events:
            due.setdefault(self.start + event.at, []).append(event)
        end = self.now + seconds
        if self.now == self.start:
            self._sample(self.now)
            self._apply(due.pop(self.now, []))
        while self.now < end:
            self.now += self.tick_seconds
            for pod in self.pods:
                pod.advance(self.tick_seconds)
            self._account()
            for backend in {name for _, name in self._lifetime}:
                requests = sum(t.requests for (_, name), t in self._lifetime.items() if name == backend)
                self._ticks.setdefault(backend, []).append((self.now, requests))
            self._sample(self.now)
            self._apply(due.pop(self.now, []))

    def _account(self) -> None:
        """Add each (pod, backend)'s new traffic to its lifetime totals."""
        for i, pod in enumerate(self.pods):
            for name, snapshot in pod.truth().items():
                current = _of(snapshot)
                before = self._previous.get((i, name), _ZERO)
                self._lifetime[(i, name)] = _plus(self._lifetime.get((i, name), _ZERO), current - before)
                self._previous[(i, name)] = current

    def _apply(self, events: list[Event]) -> None:
        for event in events:
            for i in range(len(self.pods)) if event.pods is None else event.pods:
                pod = self.pods[i]
                if event.action == "set":
                    if event.backend not in pod.profiles():
                        self._previous[(i, event.backend)] = _ZERO  # a new backend counts from 0
                    pod.set_backend(event.backend, **event.changes)
                    continue
                if event.action == "remove":
                    pod.remove_backend(event.backend)
                else:
                    pod.reset_backend(event.backend)
                self._previous[(i, event.backend)] = _ZERO  # a removed or reset backend counts from 0

    def _sample(self, t: int) -> None:
        for i, pod in enumerate(self.pods):
            jobs = [job for job in self.jobs if job.samples_at(t, i, self.start)]
            if not jobs:
                continue
            samples = pod.samples()
            backends = {labels["envoy_cluster_name"] for _, labels, _ in samples}
            for job in jobs:
                target = f'instance="gateway-{i}:9901",job="{job.name}"'
                for name, labels, value in samples:
                    self._lines.setdefault(name, []).append(f"{name}{{{series_labels(labels)},{target}}} {value!r} {t}")
                for backend in backends:
                    self._truths.setdefault((job.name, i, backend), []).append(
                        (t, self._lifetime.get((i, backend), _ZERO))
                    )

    # --- truth -------------------------------------------------------------------------------

    def truth(self, job: str, backend: str, at: float, pods: Iterable[int] | None = None) -> Truth:
        """Lifetime totals of ``backend`` at each pod's last ``job`` sample at or before ``at``."""
        total = _ZERO
        for i in range(len(self.pods)) if pods is None else pods:
            samples = self._truths.get((job, i, backend), [])
            k = bisect.bisect_right(samples, at, key=lambda sample: sample[0])
            if k:
                total = _plus(total, samples[k - 1][1])
        return total

    def served(self, backend: str, at: float) -> float:
        """Requests ``backend`` served on every pod up to ``at`` (to the tick), whether sampled or not."""
        ticks = self._ticks.get(backend, [])
        k = bisect.bisect_right(ticks, at, key=lambda tick: tick[0])
        return ticks[k - 1][1] if k else 0.0

    # --- storage -----------------------------------------------------------------------------

    def write(self, path: Path) -> int:
        """The samples as OpenMetrics text (one family after the other); returns the sample count."""
        count = 0
        with path.open("w") as out:
            for name, lines in self._lines.items():
                out.write(f"# TYPE {name} unknown\n")
                out.write("\n".join(lines))
                out.write("\n")
                count += len(lines)
            out.write("# EOF\n")
        return count

    def backfill(self, server: PrometheusServer) -> int:
        """Write the history into ``server``'s (not yet started) data dir; returns the sample count."""
        source = server.data_dir.parent / "history.om"
        count = self.write(source)
        server.data_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                _promtool(server.binary),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                str(source),
                str(server.data_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"promtool could not backfill {source}:\n{result.stdout}\n{result.stderr}")
        source.unlink()
        return count

    def close(self) -> None:
        for pod in self.pods:
            pod.stop()


def _promtool(prometheus: str) -> str:
    candidate = Path(prometheus).with_name("promtool")
    return str(candidate) if candidate.exists() else "promtool"


def serve(history: History, *, binary: str | None = None) -> PrometheusServer:
    """A started real Prometheus serving ``history`` (and scraping nothing)."""
    server = PrometheusServer([], binary=binary, retention="100y")
    try:
        history.backfill(server)
        return server.start()
    except BaseException:
        server.close()
        raise
