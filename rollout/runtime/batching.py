"""Metrics batches: every rollout with the same analysis interval is measured in one batch per
interval, on a shared cadence aligned to the clock, so Prometheus sees a constant number of
queries per tick whatever the number of rollouts.

Owns the registry of what each active rollout needs measured, one collection per (interval, slot)
and the latest reading of every rollout. Reconciles never query Prometheus: they read the latest
batch (``latest``), which the engine diffs against what it already absorbed, so a rollout woken
between two batches (a timer, a command) judges nothing twice. After each batch the rollouts in it
are woken (``on_batch``) to be judged at once. The lock is never held across the provider's call.
It never invents data: a rollout the provider left out gets no reading.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from rollout.core.readings import Outcome, Reading
from rollout.errors import MetricsError
from rollout.metrics.base import AnalysisRequest, MetricsProvider

log = logging.getLogger("rollout.batching")
Call = Callable[[Callable[[], dict[str, Reading]]], dict[str, Reading]]


class MetricsBatcher:
    def __init__(
        self,
        provider: MetricsProvider,
        *,
        call: Call | None = None,
        delay_seconds: float = 2.0,
        on_batch: Callable[[Sequence[str]], None] | None = None,
        on_queries: Callable[[int], None] | None = None,
        on_interval: Callable[[float], None] | None = None,
    ) -> None:
        self._provider = provider
        self._call: Call = call or (lambda fn: fn())
        self._delay = timedelta(seconds=delay_seconds)
        self._on_batch = on_batch
        self._lock = threading.Lock()
        self._requests: dict[str, AnalysisRequest] = {}
        self._latest: dict[str, Reading] = {}
        self._intervals: set[float] = set()  # every interval ever registered (told to on_interval once)
        self.on_queries = on_queries
        self._on_interval = on_interval

    def register(self, request: AnalysisRequest) -> None:
        """``request.key`` is active and needs measuring in every batch of its interval; the first
        request of an interval no batch was collecting for is told to ``on_interval`` (which starts
        that interval's batches), so a run never waits for a resync to be measured."""
        interval = request.interval_seconds
        with self._lock:
            new = interval not in self._intervals
            self._intervals.add(interval)
            self._requests[request.key] = request
        if new and self._on_interval is not None:
            self._on_interval(interval)

    def forget(self, key: str) -> None:
        with self._lock:
            self._requests.pop(key, None)
            self._latest.pop(key, None)

    def latest(self, key: str) -> Reading | None:
        with self._lock:
            return self._latest.get(key)

    def intervals(self) -> set[float]:
        """The analysis intervals (seconds) that registered rollouts need batches for."""
        with self._lock:
            return {r.interval_seconds for r in self._requests.values()}

    def registered(self) -> int:
        with self._lock:
            return len(self._requests)

    def collect(self, interval: float, slot: datetime | None = None) -> list[str]:
        """Measure every rollout registered with ``interval``, evaluated at ``slot`` minus the
        ingestion delay (every sample up to then is in Prometheus); returns the keys measured."""
        slot = slot or datetime.now(UTC)
        with self._lock:
            batch = [r for r in self._requests.values() if r.interval_seconds == interval]
        if not batch:
            return []
        at = slot - self._delay
        try:
            readings = self._call(lambda: self._provider.collect(batch, at))
        except MetricsError as e:
            readings = {r.key: Reading(outcome=Outcome.UNAVAILABLE, taken_at=at, detail=str(e)) for r in batch}
        with self._lock:
            for request in batch:
                reading = readings.get(request.key)
                if reading is not None and request.key in self._requests:
                    self._latest[request.key] = reading
        keys = [r.key for r in batch]
        if self._on_batch is not None:
            self._on_batch(keys)
        return keys
