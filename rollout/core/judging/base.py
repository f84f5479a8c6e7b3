"""What the engine hands a judge on every tick, and what it gets back.

Owns the judge contract. A judge is a pure function
``judge(analysis, memory, JudgeInput) -> (Verdict, memory)``: it may only use what is in its
arguments, it must absorb each ``Interval`` exactly once (the engine never hands the same
interval twice), and everything it keeps between ticks lives in its frozen memory, which is
persisted in the Rollout status (so it holds only finite floats, ints, strings and tuples).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rollout.core.readings import Interval, LatencyBuckets, Outcome


@dataclass(frozen=True)
class JudgeInput:
    """One tick's worth of evidence for the judge.

    ``interval`` is the exact counts since the last absorbed reading (None: nothing new to absorb,
    ``reason`` says why: no new scrape yet, no usable reading...). ``at_weight`` is True when the
    whole interval ran with the route at the current step's weight (its start sample was taken
    after the weight was observed on the route): only such intervals may make a step pass and
    count towards ``minRequests``. Intervals that are not at weight still count as evidence that
    the canary is worse. ``new_step`` is True on the first tick of a new step (per-step tests
    restart). ``step`` is the 0-based index of the step being judged, ``weight_steps`` how many
    setWeight and match steps the policy has. ``weight`` is None during an A/B (match) step: the
    canary gets the requests that match the managed route (plus its weight of the rest), a share
    nobody knows until traffic arrives; it has traffic to judge, and stable serves the rest.
    """

    outcome: Outcome
    interval: Interval | None
    at_weight: bool
    weight: int | None  # the canary weight (percent) during this step; None: an A/B step, share unknown
    step: int
    weight_steps: int
    new_step: bool = False
    reason: str = ""
    custom: Mapping[str, float] = field(default_factory=dict)
    latency: LatencyBuckets | None = None
