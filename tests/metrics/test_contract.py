"""The MetricsProvider contract, run over the in-memory provider and over PrometheusProvider on a real
Prometheus holding the same world (a backfilled TSDB, see ``cases.py``).

What every provider must do: one reading per request whatever else is in the batch; cumulative
counters per target that never go down between restarts and only change at scrapes; consecutive
readings whose ``difference()`` is exactly what was served in between (no extrapolation, no gap,
no overlap, restarts and late targets included); honest outcomes (NO_DATA, PARTIAL, UNAVAILABLE,
QUERY_ERROR naming the rollout, metric and query, NAN); and, where there are queries, as many per
tick for 100 rollouts as for one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollout.core.readings import NOTHING, ArmCounts, Interval, Outcome, Reading, difference
from rollout.metrics.base import AnalysisRequest, MetricsProvider
from tests.metrics.cases import (
    LATE_AT,
    REMOVED_AT,
    RESTART_AT,
    SCRAPE,
    BackfilledCase,
    MemoryCase,
    MetricsCase,
    custom_metric,
)

CASES = ("memory", pytest.param("prometheus", marks=pytest.mark.prometheus))


@pytest.fixture(scope="module")
def backfilled(prometheus_binary: str) -> Iterator[BackfilledCase]:
    case = BackfilledCase(prometheus_binary).start()
    try:
        yield case
    finally:
        case.close()


@pytest.fixture
def case(request: pytest.FixtureRequest) -> MetricsCase:
    if request.param == "memory":
        return MemoryCase()
    backfilled: BackfilledCase = request.getfixturevalue("backfilled")
    return backfilled


def steady(case: MetricsCase, key: str = "contract/steady", *, bound: float | None = 0.25) -> AnalysisRequest:
    return case.request(key, "steady-v1", "steady-v2", bound=bound)


def assert_interval_is_the_truth(
    case: MetricsCase, provider: MetricsProvider, request: AnalysisRequest, before: Reading, after: Reading
) -> Interval:
    interval = difference(before, after)
    assert interval is not None
    for arm, backend in ((interval.canary, request.canary), (interval.stable, request.stable)):
        served = _minus(
            case.truth(provider, backend, after.taken_at, after.latency),
            case.truth(provider, backend, before.taken_at, before.latency),
        )
        assert arm == served, f"{backend} between {before.taken_at} and {after.taken_at}"
    return interval


def _minus(a: ArmCounts, b: ArmCounts) -> ArmCounts:
    return ArmCounts(a.requests - b.requests, a.errors - b.errors, a.slow - b.slow, a.slow_above - b.slow_above)


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_every_request_gets_a_reading_whatever_else_is_in_the_batch(case: MetricsCase) -> None:
    provider = case.provider()
    batch = [
        steady(case),
        case.request("contract/nobody", "nobody-v1", "nobody-v2"),
        case.request("contract/bad", "steady-v1", "steady-v2", custom=[custom_metric("bad")]),
        case.request("contract/half", "steady-v1", "nobody-v2", bound=None),
    ]
    readings = case.collect(provider, batch, 300)
    assert set(readings) == {r.key for r in batch}
    assert readings["contract/steady"].outcome is Outcome.OK, readings["contract/steady"].detail
    assert readings["contract/nobody"].outcome is Outcome.NO_DATA
    assert readings["contract/bad"].outcome is Outcome.QUERY_ERROR
    assert readings["contract/half"].outcome is Outcome.PARTIAL
    assert all(r.taken_at == case.at(300) for r in readings.values())


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_counters_only_move_at_scrapes_and_never_go_down(case: MetricsCase) -> None:
    provider = case.provider()
    request = steady(case)
    previous: Reading | None = None
    for seconds in range(60, 240, 4):
        reading = case.collect(provider, [request], seconds)[request.key]
        assert reading.outcome is Outcome.OK, reading.detail
        for arm in (reading.canary, reading.stable):
            assert arm is not None
            assert len(arm) == 2  # two scrape targets
            for counters in arm.values():
                assert counters.at <= reading.taken_at.timestamp()
                assert reading.taken_at.timestamp() - counters.at < SCRAPE
                assert counters.requests >= counters.errors >= 0
                assert counters.requests >= counters.slow >= counters.slow_above >= 0
        if previous is not None:
            for now_arm, old_arm in ((reading.canary, previous.canary), (reading.stable, previous.stable)):
                assert now_arm is not None
                assert old_arm is not None
                for target, now in now_arm.items():
                    old = old_arm[target]
                    if now.at == old.at:
                        assert now == old  # no new scrape, nothing new
                    else:
                        assert now.at > old.at
                        assert now.requests >= old.requests
                        assert now.errors >= old.errors
        previous = reading


@pytest.mark.parametrize("case", CASES, indirect=True)
@pytest.mark.parametrize("step", [10, 30, 45])
def test_consecutive_differences_are_exactly_what_was_served(case: MetricsCase, step: int) -> None:
    provider = case.provider()
    request = steady(case, bound=0.3)  # between the 250 and 500 ms buckets: slow >= slow_above
    readings = [case.collect(provider, [request], s)[request.key] for s in range(120, 120 + 12 * step, step)]
    absorbed, last, held = NOTHING, readings[0], 0
    for reading in readings[1:]:
        if difference(last, reading) is None:  # no newer sample: nothing new, nothing lost
            held += 1
            continue
        interval = assert_interval_is_the_truth(case, provider, request, last, reading)
        assert interval.canary.slow >= interval.canary.slow_above
        absorbed, last = absorbed + interval.canary, reading
    assert held == 0 or step < SCRAPE
    whole = _minus(
        case.truth(provider, "steady-v2", last.taken_at, last.latency),
        case.truth(provider, "steady-v2", readings[0].taken_at, readings[0].latency),
    )
    assert absorbed == whole
    assert whole.requests > 0


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_reading_twice_at_one_instant_gives_the_same_reading(case: MetricsCase) -> None:
    provider = case.provider()
    request = steady(case)
    first = case.collect(provider, [request], 200)[request.key]
    again = case.collect(provider, [request], 200)[request.key]
    assert first == again
    assert difference(first, again) is None


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_latency_buckets_bracket_the_bound(case: MetricsCase) -> None:
    provider = case.provider()
    batch = [steady(case, "contract/exact", bound=0.25), steady(case, "contract/between", bound=0.3)]
    batch.append(steady(case, "contract/none", bound=None))
    readings = case.collect(provider, batch, 240)
    exact, between, none = readings["contract/exact"], readings["contract/between"], readings["contract/none"]
    assert exact.latency is not None
    assert exact.latency.exact
    assert exact.detail == ""
    assert between.latency is not None
    assert (between.latency.below_ms, between.latency.bound_ms, between.latency.above_ms) == (250, 300, 500)
    assert "300ms is not a histogram bucket bound" in between.detail
    assert none.latency is None
    assert none.canary is not None
    assert all(c.slow == c.slow_above == 0 for c in none.canary.values())
    for reading in (exact, between):
        assert reading.canary is not None
        assert all(c.slow >= c.slow_above for c in reading.canary.values())
    assert exact.canary is not None
    assert all(c.slow == c.slow_above for c in exact.canary.values())


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_no_series_for_either_backend_is_no_data(case: MetricsCase) -> None:
    reading = case.collect(case.provider(), [case.request("contract/none", "nobody-v1", "nobody-v2")], 300)
    assert reading["contract/none"].outcome is Outcome.NO_DATA
    assert reading["contract/none"].canary is None
    assert reading["contract/none"].stable is None
    assert "nobody-v2" in reading["contract/none"].detail


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_a_missing_backend_is_partial_and_never_zero(case: MetricsCase) -> None:
    reading = case.collect(case.provider(), [case.request("contract/half", "steady-v1", "nobody-v2")], 300)
    half = reading["contract/half"]
    assert half.outcome is Outcome.PARTIAL
    assert half.canary is None
    assert half.stable is not None
    assert "nobody-v2" in half.detail


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_an_unreachable_backend_is_unavailable_for_every_request(case: MetricsCase) -> None:
    batch = [steady(case), case.request("contract/other", "late-v1", "late-v2")]
    readings = case.collect(case.unreachable(), batch, 300)
    for reading in readings.values():
        assert reading.outcome is Outcome.UNAVAILABLE
        assert reading.canary is None
        assert reading.stable is None
        assert reading.detail


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_custom_metrics_values_and_failures_name_the_rollout_metric_and_query(case: MetricsCase) -> None:
    kinds = ("good", "nan", "absent", "bad")
    batch = [case.request(f"contract/{k}", "steady-v1", "steady-v2", custom=[custom_metric(k)]) for k in kinds]
    readings = case.collect(case.provider(), batch, 300)
    good = readings["contract/good"]
    assert good.outcome is Outcome.OK, good.detail
    assert good.custom == {"good": 0.5}
    assert "vector(0.5)" in good.queries
    assert readings["contract/nan"].outcome is Outcome.NAN
    assert readings["contract/absent"].outcome is Outcome.PARTIAL
    assert "contract/absent: custom metric 'absent' returned no series" in readings["contract/absent"].detail
    bad = readings["contract/bad"]
    assert bad.outcome is Outcome.QUERY_ERROR
    rendered = 'sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name="steady-v2"}[30s])'
    assert "contract/bad: custom metric 'bad'" in bad.detail
    assert f"(query: {rendered})" in bad.detail
    assert rendered in bad.queries
    assert bad.canary is not None  # what could be measured is still reported
    assert bad.stable is not None


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_a_restarted_target_counts_from_zero_and_nothing_is_lost(case: MetricsCase) -> None:
    provider = case.provider()
    request = case.request("contract/restart", "restart-v1", "restart-v2")
    before = case.collect(provider, [request], RESTART_AT + 5)[request.key]
    after = case.collect(provider, [request], RESTART_AT + 20)[request.key]
    interval = assert_interval_is_the_truth(case, provider, request, before, after)
    assert interval.resets == 1
    assert interval.canary.errors > 0


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_a_backend_that_disappears_is_partial(case: MetricsCase) -> None:
    provider = case.provider()
    request = case.request("contract/gone", "gone-v1", "gone-v2")
    assert case.collect(provider, [request], REMOVED_AT - 10)[request.key].outcome is Outcome.OK
    gone = case.collect(provider, [request], REMOVED_AT + 400)[request.key]  # past Prometheus' 5 min lookback
    assert gone.outcome is Outcome.PARTIAL
    assert gone.canary is None
    assert "gone-v2" in gone.detail


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_a_backend_that_appears_late_is_a_baseline_first_then_counted(case: MetricsCase) -> None:
    provider = case.provider()
    request = case.request("contract/late", "late-v1", "late-v2")
    absent = case.collect(provider, [request], LATE_AT - 30)[request.key]
    assert absent.outcome is Outcome.PARTIAL
    first = case.collect(provider, [request], LATE_AT + 30)[request.key]
    assert first.outcome is Outcome.OK, first.detail
    baseline = difference(absent, first)
    assert baseline is not None
    assert baseline.canary == NOTHING  # its earlier requests were never seen by a reading
    assert baseline.stable.requests > 0
    later = case.collect(provider, [request], LATE_AT + 90)[request.key]
    interval = assert_interval_is_the_truth(case, provider, request, first, later)
    assert interval.canary.requests > 0


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_queries_per_tick_do_not_grow_with_the_number_of_rollouts(case: MetricsCase) -> None:
    sent: dict[int, int | None] = {}
    for n in (1, 10, 100):
        provider = case.provider()
        batch = [steady(case, f"contract/r{i}") for i in range(n // 2)]
        batch += [case.request(f"contract/o{i}", f"other{i}-v1", f"other{i}-v2") for i in range(n - n // 2)]
        readings = case.collect(provider, batch, 300)
        assert len(readings) == n
        assert all(readings[r.key].outcome is Outcome.OK for r in batch if r.stable == "steady-v1")
        assert all(readings[r.key].outcome is Outcome.NO_DATA for r in batch if r.stable != "steady-v1")
        sent[n] = case.queries_sent(provider)
    assert sent[1] == sent[10] == sent[100]
    assert sent[1] in (None, 4)  # requests, 5xx, sample times, latency buckets (memory: no queries)
