"""Counter readings and the exact counts between two of them.

Owns the data the metrics adapter hands to the engine and the one rule that turns two readings
into the requests, errors and slow requests that happened between them, each counted once.

A *reading* is a snapshot of cumulative counters, per backend (arm) and per scrape target (one
Envoy, one gateway pod...), as Prometheus last scraped them, with the time of each sample. The
engine keeps the reading it last absorbed (in the status) and the judge only ever sees the
*difference* of the next reading from it:

- a target present in both readings contributes ``current - previous`` per counter; when a
  counter went down (the target restarted) it contributes ``current`` (counters restart at 0);
- a target whose sample did not advance contributes nothing (no new scrape: nothing new);
- a target that is new in the current reading becomes a baseline and contributes nothing (its
  earlier requests were never seen; Prometheus' ``increase()`` treats a first sample the same way);
- a target that vanished contributes nothing.

So no request is counted twice, there is no extrapolation (unlike ``increase()``), and no gap:
an interval always starts where the previous one ended. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict

from rollout.core.serialized import CAMEL_CASE


class Outcome(StrEnum):
    """What a reading could measure; anything but OK means some numbers are not there."""

    OK = "ok"
    NO_DATA = "no-data"  # no series for either backend
    PARTIAL = "partial"  # one backend (or a latency bucket, or a custom metric) has no series
    NAN = "nan"  # a value was NaN
    QUERY_ERROR = "query-error"  # a query itself is wrong (bad PromQL, 4xx): retrying will not help
    UNAVAILABLE = "unavailable"  # Prometheus unreachable, timed out or 5xx


@dataclass(frozen=True)
class TargetCounters:
    """Cumulative counters of one backend on one scrape target, at one sample time.

    ``slow`` counts requests slower than the largest histogram bucket at or below the latency
    SLO bound; ``slow_above`` those slower than the smallest bucket at or above it (equal when the
    bound is a bucket bound). Both are 0 when no latency SLO is judged.
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    requests: float
    errors: float
    at: float  # the sample's timestamp, Unix seconds
    slow: float = 0.0
    slow_above: float = 0.0


@dataclass(frozen=True)
class LatencyBuckets:
    """Which histogram buckets stand for the latency SLO bound (milliseconds)."""

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    bound_ms: float
    below_ms: float | None  # largest bucket bound <= bound_ms (None: no bucket below it)
    above_ms: float | None  # smallest bucket bound >= bound_ms (None: bound above every bucket)

    @property
    def exact(self) -> bool:
        return self.below_ms == self.bound_ms == self.above_ms


@dataclass(frozen=True)
class Reading:
    """One snapshot of a rollout's counters, as the metrics adapter read it at ``taken_at``.

    ``canary`` / ``stable`` map a target id (a short, stable fingerprint of the target's labels)
    to its counters; ``None`` when that backend has no series at all. A non-OK ``outcome`` says
    what could not be measured (``detail`` says why, with the query).
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    outcome: Outcome
    taken_at: datetime
    canary: Mapping[str, TargetCounters] | None = None
    stable: Mapping[str, TargetCounters] | None = None
    custom: Mapping[str, float] = field(default_factory=dict)  # gauge-type custom metrics, their current value
    latency: LatencyBuckets | None = None
    detail: str = ""
    queries: tuple[str, ...] = ()

    @property
    def sampled_at(self) -> float | None:
        """The newest sample time in the reading (Unix seconds), None without samples."""
        times = [c.at for arm in (self.canary, self.stable) if arm for c in arm.values()]
        return max(times) if times else None


@dataclass(frozen=True)
class ArmCounts:
    """What one backend served over one interval: requests, 5xx, slow requests (see TargetCounters)."""

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    requests: float
    errors: float
    slow: float = 0.0
    slow_above: float = 0.0

    def __add__(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(
            self.requests + other.requests,
            self.errors + other.errors,
            self.slow + other.slow,
            self.slow_above + other.slow_above,
        )

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def slow_ratio(self) -> float | None:
        return self.slow / self.requests if self.requests > 0 else None


NOTHING = ArmCounts(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Interval:
    """The exact counts between two readings: every request in it happened after ``start`` and
    at or before ``end`` (sample times), and no other interval holds it."""

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    canary: ArmCounts
    stable: ArmCounts
    start: datetime  # the oldest sample time of the previous reading's contributing targets
    end: datetime  # the newest sample time of the current reading
    resets: int = 0  # counters that went down (a restarted target); counted from 0

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _arm_delta(
    previous: Mapping[str, TargetCounters] | None, current: Mapping[str, TargetCounters] | None
) -> tuple[ArmCounts, int, list[float]]:
    """(counts, resets, start times of the contributing targets) of one arm."""
    total, resets = NOTHING, 0
    starts: list[float] = []
    if not previous or not current:
        return total, resets, starts
    for target, now in current.items():
        before = previous.get(target)
        if before is None or now.at <= before.at:
            continue
        deltas = []
        went_down = False
        for cur, old in (
            (now.requests, before.requests),
            (now.errors, before.errors),
            (now.slow, before.slow),
            (now.slow_above, before.slow_above),
        ):
            if cur < old:
                went_down = True
            deltas.append(cur - old)
        if went_down:  # the target restarted: everything it counted is new
            resets += 1
            deltas = [now.requests, now.errors, now.slow, now.slow_above]
        requests, errors, slow, slow_above = (max(d, 0.0) for d in deltas)
        total = total + ArmCounts(requests, min(errors, requests), min(slow, requests), min(slow_above, requests))
        starts.append(before.at)
    return total, resets, starts


def carry(previous: Reading | None, current: Reading) -> Reading:
    """``current`` to keep as the last absorbed reading: targets it lacks (a backend or a pod whose
    series were missing this time) keep their previous counters, so their requests are counted
    when they come back instead of being taken as a fresh baseline."""
    if previous is None:
        return Reading(outcome=current.outcome, taken_at=current.taken_at, canary=current.canary, stable=current.stable)

    def merged(
        old: Mapping[str, TargetCounters] | None, new: Mapping[str, TargetCounters] | None
    ) -> dict[str, TargetCounters] | None:
        if not old and not new:
            return None
        return {**(old or {}), **(new or {})}

    return Reading(
        outcome=current.outcome,
        taken_at=current.taken_at,
        canary=merged(previous.canary, current.canary),
        stable=merged(previous.stable, current.stable),
    )


def difference(previous: Reading, current: Reading) -> Interval | None:
    """The counts between ``previous`` and ``current``, or None when no target has a newer sample.

    Both readings must be usable (outcome OK or PARTIAL); the caller says why otherwise.
    """
    canary, canary_resets, canary_starts = _arm_delta(previous.canary, current.canary)
    stable, stable_resets, stable_starts = _arm_delta(previous.stable, current.stable)
    starts = canary_starts + stable_starts
    end = current.sampled_at
    if not starts or end is None:
        return None
    return Interval(
        canary=canary,
        stable=stable,
        start=datetime.fromtimestamp(min(starts), UTC),
        end=datetime.fromtimestamp(end, UTC),
        resets=canary_resets + stable_resets,
    )
