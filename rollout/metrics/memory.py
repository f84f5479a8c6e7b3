"""An in-memory metrics provider for the simulator and fast tests: cumulative counters per backend and
per scrape target, scraped every ``scrape_seconds``, with settable error rate, slow share, outages,
absent backends, target restarts and custom gauge values.

Owns nothing but arithmetic on seeded random generators (one per backend, so the traffic does not
depend on the order rollouts are read in), and produces the same kind of ``Reading`` as the
Prometheus provider. A target's counters advance only at its scrapes (target ``i`` of ``n`` is
scraped at ``i * scrape_seconds / n`` past each multiple of ``scrape_seconds``): a reading at
``at`` shows each target as of its last scrape at or before ``at``. The traffic of a scrape period
is drawn when a reading first reaches it, at ``rps * share(backend)`` (split evenly over the
targets) with the profile in force then. It keeps the exact truth (``truth``) next to the counters,
never resets it, and honours the MetricsProvider contract: missing traffic is reported as such.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rollout.core.readings import ArmCounts, LatencyBuckets, Outcome, Reading, TargetCounters
from rollout.metrics.base import AnalysisRequest, failed, outcome_of
from rollout.metrics.queries import (
    ENVOY_DEFAULT_BUCKETS_MS,
    backend_value,
    describe_buckets,
    latency_buckets,
    render_custom,
)

HISTORY = 1024
"""Scrapes remembered per target, for readings and truths at an earlier instant."""

_Counts = tuple[float, float, float, float]  # requests, errors, slow, slow_above
_NONE: _Counts = (0.0, 0.0, 0.0, 0.0)


@dataclass
class BackendProfile:
    """How one backend behaves from its next scrape period on.

    ``slow_share``: share of requests slower than the histogram bucket at or below the latency SLO
    bound; ``slow_above_share``: slower than the bucket at or above it (None: the same share, i.e.
    the bound is a bucket bound). ``serving=False``: the backend's series are absent; when it
    serves again its counters start from 0 (a new Envoy cluster).
    """

    error_rate: float = 0.002
    slow_share: float = 0.002
    slow_above_share: float | None = None
    serving: bool = True


class _Target:
    __slots__ = ("history", "offset", "restart")

    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.restart = False
        self.history: deque[tuple[float, _Counts, _Counts]] = deque(maxlen=HISTORY)  # (time, exposed, truth)

    def at(self, when: float) -> tuple[float, _Counts, _Counts] | None:
        """The last scrape at or before ``when``, None before the first one remembered."""
        for entry in reversed(self.history):
            if entry[0] <= when:
                return entry
        return None


class _Backend:
    def __init__(self, name: str, seed: int, targets: int, scrape: float) -> None:
        self.rng = random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))
        self.targets = {f"gateway-{i}": _Target(i * scrape / targets) for i in range(targets)}


class MemoryMetrics:
    """Synthetic counters: ``rps * share(backend)`` requests per second to each backend."""

    def __init__(
        self,
        *,
        rps: float,
        share: Callable[[str], float],
        seed: int = 0,
        scrape_seconds: float = 15.0,
        targets: int = 1,
        buckets_ms: Sequence[float] = ENVOY_DEFAULT_BUCKETS_MS,
    ) -> None:
        if scrape_seconds <= 0 or targets < 1:
            raise ValueError("scrape_seconds must be positive and targets at least 1")
        self.rps = rps
        self.scrape_seconds = scrape_seconds
        self._share = share
        self._seed = seed
        self._targets = targets
        self._buckets = tuple(buckets_ms)
        self._backends: dict[str, _Backend] = {}
        self._well_formed: dict[str, bool] = {}
        self.profiles: dict[str, BackendProfile] = {}
        self.unavailable = False
        """True: every reading is UNAVAILABLE (traffic and counters go on)."""
        self.custom_values: dict[str, float] = {}
        """Custom metric name -> its current value (absent: the metric has no series)."""
        self.calls = 0
        """How many times ``collect`` was called."""

    def profile(self, backend: str) -> BackendProfile:
        return self.profiles.setdefault(backend, BackendProfile())

    def restart(self, backend: str, target: str | None = None) -> None:
        """The backend's targets (or one) restart right after their last scrape: counters from 0."""
        for name, t in self._backend(backend).targets.items():
            if target is None or name == target:
                t.restart = True

    def truth(self, backend: str, at: float, latency: LatencyBuckets | None = None) -> ArmCounts:
        """Exactly what the backend served up to each target's last scrape at or before ``at``
        (Unix seconds), as far as readings have advanced the counters; never reset. Slow requests
        are counted as a reading with ``latency`` counts them (none without)."""
        total = ArmCounts(0.0, 0.0, 0.0, 0.0)
        for t in self._backend(backend).targets.values():
            entry = t.at(at)
            if entry is not None:
                requests, errors, slow, slow_above = entry[2]
                total = total + ArmCounts(requests, errors, *_slow(requests, slow, slow_above, latency))
        return total

    # --- MetricsProvider ---------------------------------------------------------------------

    def collect(self, batch: Sequence[AnalysisRequest], at: datetime) -> dict[str, Reading]:
        self.calls += 1
        now = at.timestamp()
        for request in batch:
            for backend in (request.canary, request.stable):
                self._advance(backend, now)
        if self.unavailable:
            detail = "metrics backend unreachable (simulated outage)"
            return {r.key: failed(Outcome.UNAVAILABLE, f"{r.key}: {detail}", at) for r in batch}
        return {r.key: self._reading(r, now, at) for r in batch}

    def _backend(self, name: str) -> _Backend:
        backend = self._backends.get(name)
        if backend is None:
            backend = self._backends[name] = _Backend(name, self._seed, self._targets, self.scrape_seconds)
        return backend

    def _advance(self, name: str, now: float) -> None:
        """Draw the traffic of every scrape period that ended at or before ``now``, one per scrape
        (at most ``HISTORY`` of them; older periods of a long gap are drawn as one)."""
        backend, profile = self._backend(name), self.profile(name)
        rate = self.rps * self._share(name) / self._targets
        step = self.scrape_seconds
        for t in backend.targets.values():
            scrape = t.offset + math.floor((now - t.offset) / step) * step
            if not t.history:  # first seen: its counters start here
                t.history.append((scrape, _NONE, _NONE))
                continue
            last = t.history[-1][0]
            periods = round((scrape - last) / step)
            if periods <= 0:
                continue
            lump = max(0, periods - HISTORY)
            for k in ([lump] if lump else []) + list(range(lump + 1, periods + 1)):
                self._scrape(t, backend.rng, profile, rate, last + k * step)

    def _scrape(self, t: _Target, rng: random.Random, profile: BackendProfile, rate: float, when: float) -> None:
        """One scrape of one target at ``when``: the traffic since its previous scrape."""
        before, exposed, truth = t.history[-1]
        if not profile.serving:  # no series, no traffic; it comes back as a new cluster
            t.restart = True
            t.history.append((when, exposed, truth))
            return
        drawn = self._draw(rng, profile, rate * (when - before))
        t.history.append((when, drawn if t.restart else _plus(exposed, drawn), _plus(truth, drawn)))
        t.restart = False

    def _draw(self, rng: random.Random, p: BackendProfile, mean: float) -> _Counts:
        requests = _poisson(rng, mean)
        errors = _binomial(rng, requests, p.error_rate)
        slow = _binomial(rng, requests, p.slow_share)
        above = p.slow_share if p.slow_above_share is None else min(p.slow_above_share, p.slow_share)
        slow_above = _binomial(rng, slow, above / p.slow_share) if p.slow_share > 0 else 0
        return float(requests), float(errors), float(slow), float(slow_above)

    # --- readings ----------------------------------------------------------------------------

    def _reading(self, request: AnalysisRequest, now: float, at: datetime) -> Reading:
        problems: list[tuple[Outcome, str]] = []
        latency = (
            latency_buckets(request.latency_bound_seconds, self._buckets)
            if request.latency_bound_seconds is not None
            else None
        )
        arms: dict[str, Mapping[str, TargetCounters] | None] = {}
        for arm, backend in (("canary", request.canary), ("stable", request.stable)):
            arms[arm] = self._arm(backend, now, latency)
        missing = [arm for arm, counters in arms.items() if counters is None]
        if len(missing) == 2:
            problems.append((Outcome.NO_DATA, f"no series for canary {request.canary!r} nor stable {request.stable!r}"))
        elif missing:
            backend = request.canary if missing[0] == "canary" else request.stable
            problems.append((Outcome.PARTIAL, f"no series for {missing[0]} {backend!r}"))
        custom, queries = self._custom(request, problems)
        notes = [describe_buckets(latency)] if latency is not None and not latency.exact else []
        return Reading(
            outcome=outcome_of(problems),
            taken_at=at,
            canary=arms["canary"],
            stable=arms["stable"],
            custom=custom,
            latency=latency,
            detail="; ".join([d for _, d in problems] + notes),
            queries=queries,
        )

    def _arm(self, name: str, now: float, latency: LatencyBuckets | None) -> dict[str, TargetCounters] | None:
        if not self.profile(name).serving:
            return None
        out: dict[str, TargetCounters] = {}
        for target, t in self._backend(name).targets.items():
            entry = t.at(now)
            if entry is None:
                continue
            when, (requests, errors, slow, slow_above), _ = entry
            slow, slow_above = _slow(requests, slow, slow_above, latency)
            out[target] = TargetCounters(requests=requests, errors=errors, at=when, slow=slow, slow_above=slow_above)
        return out or None

    def _custom(
        self, request: AnalysisRequest, problems: list[tuple[Outcome, str]]
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        values: dict[str, float] = {}
        queries: list[str] = []
        for metric in request.custom:
            query = render_custom(
                metric,
                namespace=request.namespace,
                backend=backend_value(request.labels, request.canary),
                labels=request.labels,
                window_seconds=request.custom_window_seconds,
                interval_seconds=request.interval_seconds,
            )
            queries.append(query)
            where = f"{request.key}: custom metric {metric.name!r}"
            if not self._well_formed.setdefault(query, _balanced(query)):
                problems.append((Outcome.QUERY_ERROR, f"{where}: unbalanced brackets (query: {query})"))
            elif metric.name not in self.custom_values:
                problems.append((Outcome.PARTIAL, f"{where} returned no series (query: {query})"))
            elif math.isnan(self.custom_values[metric.name]):
                problems.append((Outcome.NAN, f"{where} is NaN (query: {query})"))
            else:
                values[metric.name] = self.custom_values[metric.name]
        return values, tuple(queries)


def _slow(requests: float, slow: float, slow_above: float, latency: LatencyBuckets | None) -> tuple[float, float]:
    """(slow, slow_above) as the histogram buckets of ``latency`` would count them."""
    if latency is None:
        return 0.0, 0.0
    if latency.exact:  # one bucket bound: one count
        return slow, slow
    return (requests if latency.below_ms is None else slow), (0.0 if latency.above_ms is None else slow_above)


def _plus(a: _Counts, b: _Counts) -> _Counts:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


def _balanced(query: str) -> bool:
    """Whether (), [] and {} pair up outside string literals: the one PromQL check the fake makes."""
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quote = ""
    escaped = False
    for c in query:
        if quote:
            escaped = c == "\\" and not escaped
            if c == quote and not escaped:
                quote = ""
            continue
        if c in "\"'`":
            quote = c
        elif c in "([{":
            stack.append(c)
        elif c in closing and (not stack or stack.pop() != closing[c]):
            return False
    return not stack and not quote


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, k, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


def _binomial(rng: random.Random, n: int, p: float) -> int:
    """A binomial draw: normal approximation when both tails hold > 50, else exact by waiting times
    (O(n * min(p, 1 - p)) draws, cheap for the small shares simulated)."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if n * p > 50 and n * (1 - p) > 50:
        return min(n, max(0, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))))
    if p > 0.5:
        return n - _binomial(rng, n, 1 - p)
    log_q = math.log1p(-p)
    k, i = 0, 0
    while True:
        i += int(math.log(1.0 - rng.random()) / log_q) + 1
        if i > n:
            return k
        k += 1
