"""Metrics batching across rollouts: one provider call per analysis slot for every active rollout.

Owns the rule that rollouts judged on the same tick share their queries: each rollout registers
what it needs; the first rollout to ask in a slot (``floor(now / interval)``) triggers one batched
``collect`` for all registered rollouts with that interval, and the others read the cached
samples. Thread-safe; it never invents data (a rollout missing from a batch is collected alone).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from rollout.core.states import MetricsSample, Outcome
from rollout.errors import MetricsError
from rollout.metrics.base import AnalysisRequest, MetricsProvider

Call = Callable[[Callable[[], dict[str, MetricsSample]]], dict[str, MetricsSample]]


class MetricsBatcher:
    def __init__(self, provider: MetricsProvider, *, call: Call | None = None) -> None:
        self._provider = provider
        self._call: Call = call or (lambda fn: fn())
        self._lock = threading.Lock()
        self._requests: dict[str, AnalysisRequest] = {}
        self._cache: dict[tuple[float, int], dict[str, MetricsSample]] = {}
        self.batches = 0

    def register(self, request: AnalysisRequest) -> None:
        with self._lock:
            self._requests[request.key] = request

    def forget(self, key: str) -> None:
        with self._lock:
            self._requests.pop(key, None)

    def sample(self, request: AnalysisRequest, now: datetime) -> MetricsSample:
        """This rollout's sample for the slot ``now`` falls in, collecting the slot's batch if needed."""
        interval = max(request.interval_seconds, 1.0)
        slot = (interval, int(now.timestamp() // interval))
        with self._lock:
            self._requests[request.key] = request
            cached = self._cache.get(slot)
            if cached is not None and request.key in cached:
                return cached[request.key]
            batch = [r for r in self._requests.values() if r.interval_seconds == request.interval_seconds]
            if cached is not None:
                batch = [request]
            try:
                samples = self._call(lambda: self._provider.collect(batch, now))
            except MetricsError as e:
                return MetricsSample(outcome=Outcome.UNAVAILABLE, detail=str(e))
            self.batches += 1
            merged = {**(cached or {}), **samples}
            self._cache[slot] = merged
            while len(self._cache) > 64:  # a few slots per interval in use is all that is ever read
                del self._cache[next(iter(self._cache))]
            return merged.get(request.key) or MetricsSample(
                outcome=Outcome.NO_DATA, detail="the metrics provider returned nothing for this rollout"
            )
