"""Counter readings to exact interval counts: resets, stale samples, new and vanished targets, and
targets that miss one reading."""

from __future__ import annotations

from rollout.core.readings import Outcome, Reading, TargetCounters, carry, difference
from tests.core.factories import T0


def reading(canary: dict[str, TargetCounters] | None, stable: dict[str, TargetCounters] | None = None) -> Reading:
    return Reading(Outcome.OK, T0, canary=canary, stable=stable)


def test_counts_are_differences_and_a_restarted_target_counts_from_zero() -> None:
    before = reading({"a": TargetCounters(100, 2, 10.0), "b": TargetCounters(500, 0, 10.0)})
    after = reading({"a": TargetCounters(160, 3, 20.0), "b": TargetCounters(40, 1, 20.0)})
    interval = difference(before, after)
    assert interval is not None
    assert (interval.canary.requests, interval.canary.errors, interval.resets) == (100, 2, 1)


def test_nothing_new_without_a_newer_sample_and_new_targets_are_baselines() -> None:
    before = reading({"a": TargetCounters(100, 2, 10.0)})
    assert difference(before, before) is None
    grown = reading({"a": TargetCounters(100, 2, 10.0), "new": TargetCounters(9_999, 0, 20.0)})
    assert difference(before, grown) is None


def test_a_backend_missing_from_one_reading_is_counted_when_it_returns() -> None:
    first = reading({"a": TargetCounters(100, 0, 10.0)}, {"s": TargetCounters(1_000, 1, 10.0)})
    partial = Reading(Outcome.PARTIAL, T0, canary={"a": TargetCounters(150, 0, 20.0)}, stable=None)
    kept = carry(first, partial)
    assert kept.stable == {"s": TargetCounters(1_000, 1, 10.0)}
    back = reading({"a": TargetCounters(200, 0, 30.0)}, {"s": TargetCounters(1_900, 4, 30.0)})
    interval = difference(kept, back)
    assert interval is not None and (interval.stable.requests, interval.stable.errors) == (900, 3)
