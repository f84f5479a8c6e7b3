"""The in-memory provider's own promises (the contract suite covers what it shares with Prometheus):
determinism per seed, scrape steps, the traffic split, outages that lose nothing, long gaps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rollout.core.readings import Outcome, Reading, difference
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.memory import HISTORY, MemoryMetrics

T0 = 1_700_000_040.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def request(key: str = "ns/r", stable: str = "s", canary: str = "c") -> AnalysisRequest:
    return AnalysisRequest(
        key=key, namespace="ns", stable=stable, canary=canary, interval_seconds=30, latency_bound_seconds=0.25
    )


def metrics(seed: int = 1, *, scrape_seconds: float = 15.0, targets: int = 1) -> MemoryMetrics:
    share = {"c": 0.25, "s": 0.75}
    return MemoryMetrics(
        rps=100.0, share=lambda b: share.get(b, 0.1), seed=seed, scrape_seconds=scrape_seconds, targets=targets
    )


def run(m: MemoryMetrics, batch: list[AnalysisRequest], times: range) -> list[dict[str, Reading]]:
    return [m.collect(batch, at(t)) for t in times]


def test_same_seed_same_readings_whatever_the_batch_order() -> None:
    one, two = request("ns/a", "s", "c"), request("ns/b", "x", "y")
    first = run(metrics(seed=3), [one, two], range(0, 300, 30))
    second = run(metrics(seed=3), [two, one], range(0, 300, 30))
    assert [r["ns/a"] for r in first] == [r["ns/a"] for r in second]
    other = run(metrics(seed=4), [one], range(0, 300, 30))
    assert [r["ns/a"] for r in first] != [r["ns/a"] for r in other]


def test_a_reading_shows_each_target_as_of_its_last_scrape() -> None:
    m = metrics(scrape_seconds=10.0, targets=2)
    m.collect([request()], at(0))
    reading = m.collect([request()], at(27))["ns/r"]
    assert reading.canary is not None
    assert sorted(c.at - T0 for c in reading.canary.values()) == [20.0, 25.0]  # offsets 0 and 5 s
    assert reading.sampled_at == T0 + 25.0
    assert m.collect([request()], at(29))["ns/r"] == Reading(**{**reading.__dict__, "taken_at": at(29)})


def test_traffic_is_split_by_share_and_errors_by_profile() -> None:
    m = metrics()
    m.profile("c").error_rate = 0.1
    first = m.collect([request()], at(0))["ns/r"]
    last = m.collect([request()], at(3600))["ns/r"]
    interval = difference(first, last)
    assert interval is not None
    assert interval.canary.requests == pytest.approx(25 * 3600, rel=0.02)
    assert interval.stable.requests == pytest.approx(75 * 3600, rel=0.02)
    assert interval.canary.errors / interval.canary.requests == pytest.approx(0.1, abs=0.005)
    assert interval.stable.errors / interval.stable.requests == pytest.approx(0.002, abs=0.001)


def test_an_outage_hides_the_counters_but_loses_no_request() -> None:
    m = metrics()
    before = m.collect([request()], at(0))["ns/r"]
    m.unavailable = True
    down = [m.collect([request()], at(t))["ns/r"] for t in (30, 60, 90)]
    assert all(r.outcome is Outcome.UNAVAILABLE and r.canary is None for r in down)
    m.unavailable = False
    after = m.collect([request()], at(120))["ns/r"]
    interval = difference(before, after)
    assert interval is not None
    truth = m.truth("c", T0 + 120, after.latency)
    assert interval.canary.requests == truth.requests - m.truth("c", T0, before.latency).requests
    assert interval.canary.requests == pytest.approx(25 * 120, rel=0.2)


def test_a_backend_that_stops_serving_comes_back_with_fresh_counters() -> None:
    m = metrics()
    m.collect([request()], at(0))
    served = m.collect([request()], at(60))["ns/r"]
    m.profile("c").serving = False
    gone = m.collect([request()], at(90))["ns/r"]
    assert gone.outcome is Outcome.PARTIAL
    assert gone.canary is None
    m.profile("c").serving = True
    back = m.collect([request()], at(120))["ns/r"]
    interval = difference(served, back)
    assert interval is not None
    assert interval.resets == 1
    assert interval.canary.requests == m.truth("c", T0 + 120).requests - m.truth("c", T0 + 60).requests


def test_a_long_gap_keeps_the_last_scrapes_and_counts_everything() -> None:
    m = metrics(scrape_seconds=1.0)
    first = m.collect([request()], at(0))["ns/r"]
    gap = HISTORY * 3
    last = m.collect([request()], at(gap))["ns/r"]
    interval = difference(first, last)
    assert interval is not None
    assert interval.canary.requests == m.truth("c", T0 + gap).requests
    assert interval.canary.requests == pytest.approx(25 * gap, rel=0.05)
    earlier = m.collect([request()], at(gap - 10))["ns/r"]  # inside the remembered scrapes: exact
    assert earlier.sampled_at == T0 + gap - 10
    assert m.collect([request()], at(5))["ns/r"].outcome is Outcome.NO_DATA  # forgotten: no series, not a guess


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="scrape_seconds"):
        MemoryMetrics(rps=1, share=lambda b: 1.0, scrape_seconds=0)
