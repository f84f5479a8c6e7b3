"""Each request is absorbed once, whatever interleaving of metric batches and other wakes (a
timer, a command, a spec change, a second tick in the same batch slot) reaches ``decide()``.

A wake reads the latest batch again: the same reading the last batch brought. Property: over any
sequence of batches and wakes, a wake never moves the baseline and never adds evidence (the
judge's run-long stable counts, its fixed-limit failures); a batch moves the baseline forward only
and adds at most what the counters grew between the two readings, so the evidence of a run never
exceeds what was served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.core.readings import Reading
from tests.core.factories import Driver, Traffic, policy


@dataclass
class Replaying(Driver):
    """A Driver whose ``repeat`` ticks get the last reading again (a wake between two batches)."""

    repeat: bool = False
    last: Reading | None = None

    def reading(self) -> Reading | None:
        if self.repeat and self.last is not None:
            return self.last
        self.last = super().reading()
        return self.last


def stable_requests(reading: Reading | None) -> float:
    if reading is None or reading.stable is None:
        return 0.0
    return float(sum(c.requests for c in reading.stable.values()))


events = st.lists(
    st.tuples(st.sampled_from(["batch", "wake"]), st.integers(min_value=1, max_value=45)), min_size=5, max_size=80
)


@pytest.mark.parametrize("judge", ["sequential", "threshold"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events, canary_errors=st.sampled_from([0.0, 0.002, 0.05]))
def test_wakes_never_add_evidence_and_batches_add_each_request_once(
    judge: str, events: list[tuple[str, int]], canary_errors: float
) -> None:
    d = Replaying(policy(judge=judge), traffic=Traffic(rps=50, canary_errors=canary_errors, stable_errors=0.002))
    first: float | None = None
    for kind, seconds in events:
        before = d.state
        d.repeat = kind == "wake" and d.last is not None  # before any batch there is nothing to read again
        d.tick(advance=timedelta(seconds=seconds))
        after = d.state
        if not after.phase.active:
            break
        if after.baseline is not None and first is None:
            first = stable_requests(after.baseline)
        if d.repeat:
            assert after.baseline == before.baseline, "a wake moved the baseline"
            assert after.judge.stable_run == before.judge.stable_run, "a wake added evidence"
            assert after.judge.failures <= before.judge.failures, "a wake counted a failure"
        elif before.baseline is not None and after.baseline != before.baseline:
            assert after.baseline is not None and after.baseline.taken_at > before.baseline.taken_at
            grown = stable_requests(after.baseline) - stable_requests(before.baseline)
            added = after.judge.stable_run.requests - before.judge.stable_run.requests
            assert added <= grown + 1e-6, "a batch added more than the counters grew"
        if first is not None and after.baseline is not None:
            served = stable_requests(after.baseline) - first
            assert after.judge.stable_run.requests <= served + 1e-6, "more evidence than was served"
