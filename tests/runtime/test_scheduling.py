"""The scheduler on a fake clock: due times from the engine, wakes, one run at a time per rollout,
deleted rollouts dropped, lag and backlog reported; and the worker pool on real threads."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from rollout.core.states import Phase
from rollout.runtime.reconciling import Outcome
from rollout.runtime.scheduling import RolloutScheduler, SchedulerStats


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def outcome(key: str, at: float | None, error: str = "") -> Outcome:
    when = datetime.fromtimestamp(at, UTC) if at is not None else None
    return Outcome(key, Phase.PROGRESSING, when, error=error)


def test_the_engines_next_time_is_honoured_to_the_second() -> None:
    clock = Clock()
    runs: list[tuple[str, float]] = []
    nexts = {"ns/a": [1_010.0, 1_013.5, None]}

    def reconcile(ns: str, name: str) -> Outcome:
        key = f"{ns}/{name}"
        runs.append((key, clock.now))
        return outcome(key, nexts[key].pop(0))

    s = RolloutScheduler(reconcile, clock=clock)
    s.wake("ns/a")
    s.run_due()
    for t in (1_005.0, 1_010.0, 1_013.0, 1_013.5, 2_000.0):
        clock.now = t
        s.run_due()
    assert [t for _, t in runs] == [1_000.0, 1_010.0, 1_013.5]
    assert s.due_in("ns/a") is None  # finished: only a wake brings it back


def test_a_wake_while_running_runs_again_right_after_and_wakes_coalesce() -> None:
    clock = Clock()
    coalesced: list[int] = []
    s = RolloutScheduler(
        lambda ns, n: outcome(f"{ns}/{n}", clock.now + 60),
        clock=clock,
        stats=SchedulerStats(coalesced=lambda: coalesced.append(1)),
    )
    s.wake("ns/a")
    s.wake("ns/a")
    s.wake("ns/a")
    assert s.run_due() == ["ns/a"] and len(coalesced) == 2
    assert s.due_in("ns/a") == 60


def test_a_deleted_rollout_is_forgotten_and_a_crash_is_retried_later() -> None:
    clock = Clock()
    s = RolloutScheduler(lambda ns, n: outcome(f"{ns}/{n}", None, error="deleted"), clock=clock)
    s.wake("ns/gone")
    s.run_due()
    assert "ns/gone" not in s.known()

    def crash(ns: str, n: str) -> Outcome:
        raise RuntimeError("bug")

    crashes: list[int] = []
    s2 = RolloutScheduler(crash, clock=clock, stats=SchedulerStats(crashed=lambda: crashes.append(1)))
    s2.wake("ns/b")
    s2.run_due()
    assert crashes == [1] and s2.due_in("ns/b") == 30.0


def test_lag_is_reported_from_the_due_time() -> None:
    clock = Clock()
    lags: list[float] = []
    s = RolloutScheduler(lambda ns, n: outcome(f"{ns}/{n}", None), clock=clock, stats=SchedulerStats(lag=lags.append))
    s.schedule("ns/a", 1_004.0)
    clock.now = 1_007.5
    s.run_due()
    assert lags == [3.5]


def test_the_pool_never_runs_one_rollout_twice_at_once_and_keeps_every_rollout_moving() -> None:
    active: dict[str, int] = {}
    overlap: list[str] = []
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def reconcile(ns: str, name: str) -> Outcome:
        key = f"{ns}/{name}"
        with lock:
            active[key] = active.get(key, 0) + 1
            if active[key] > 1:
                overlap.append(key)
            counts[key] = counts.get(key, 0) + 1
        time.sleep(0.002)
        with lock:
            active[key] -= 1
        return outcome(key, time.time() + 0.05)

    s = RolloutScheduler(reconcile, workers=4, min_delay=0.01)
    s.start()
    try:
        keys = [f"ns/r{i}" for i in range(40)]
        for key in keys:
            s.wake(key)
        deadline = time.time() + 10
        while time.time() < deadline and min(counts.get(k, 0) for k in keys) < 5:
            for key in keys[:5]:
                s.wake(key)  # noisy watch events on a few
            time.sleep(0.01)
    finally:
        s.shutdown(timeout=5)
    assert not overlap
    assert min(counts.get(k, 0) for k in keys) >= 5
