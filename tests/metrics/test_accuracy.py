"""Issue 15's done-means on a real Prometheus: every judged interval is exactly what was served
between its sample times, and a run's judged counts are within 2% of what was served, for scrape
intervals 5/15/30/60 s and judging intervals 10/30/60 s (half an hour of backfilled traffic; the
report's table is ``python -m tests.metrics.accuracy``, one hour).

Interval < scrape: a reading with no newer sample than the last absorbed one yields no interval
(``held``); the engine keeps the last absorbed reading, so nothing is lost and the next interval
covers the time. Interval between one and two scrapes: intervals cover one or two scrape periods
each, never overlapping.
"""

from __future__ import annotations

import pytest

from tests.metrics.accuracy import INTERVALS, SCRAPES, Row, measure

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


@pytest.fixture(scope="module")
def rows(prometheus_binary: str) -> dict[tuple[int, int], Row]:
    measured, _ = measure(prometheus_binary, judged=1800)
    return {(r.scrape, r.interval): r for r in measured}


@pytest.mark.parametrize("scrape", SCRAPES)
@pytest.mark.parametrize("interval", INTERVALS)
def test_judged_counts_are_exact_per_interval_and_within_2_percent_over_the_run(
    rows: dict[tuple[int, int], Row], scrape: int, interval: int
) -> None:
    row = rows[(scrape, interval)]
    assert row.mismatched == 0
    assert row.absorbed + row.held == 1800 // interval
    if interval >= scrape:  # every reading has a newer sample of some target
        assert row.held == 0
    if (scrape, interval) in ((30, 10), (60, 10), (60, 30)):  # readings with no newer sample: held, not lost
        assert row.held > 0
    assert abs(row.error) < 0.02
    assert row.judged <= row.served  # never more than served: nothing counted twice
