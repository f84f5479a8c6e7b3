"""Judge benchmark: our judge against Flagger- and Kayenta-style rules, fed what production feeds.

Owns the scenario table, a stand-in for the engine's step semantics and the one markdown table
``main()`` prints. Counts come from ``traffic.py`` (Envoy pods, cumulative counters, Prometheus
scrapes every 15 s, readings at each 30 s analysis tick) through the real
``rollout.core.readings.difference``; each interval is handed to the judge once.

The engine stand-in (``_Run.tick``) applies the step semantics of issue 9: a weight change takes
effect at a tick; an interval is at weight when its start sample was taken after the change; a step
passes when it has carried its weight for ``stepDuration`` and the judge passes with enough data;
``rollback`` ends the run; a step not passed within ``DEADLINE_S`` pauses the run ("stuck"). To
drive the real ``decide()`` instead, replace ``_Run.tick``'s body (judge call and step logic) with
one ``decide(policy, state, observations(reading), now)`` call and read the route weight it sets.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rollout.core.judging.base import JudgeInput
from rollout.core.readings import LatencyBuckets, Outcome, Reading, difference
from rollout.policy.analysis import Analysis
from tests.bench.peers import BenchJudge, Flagger, Kayenta, Ours
from tests.bench.traffic import EPOCH, Burst, Latency, Traffic, World

WEIGHTS = (10, 25, 50, 100)
DEADLINE_S = 1800.0  # per step: not passed by then = the run pauses ("stuck")
SCRAPE_S = 15.0
BUCKETS = LatencyBuckets(300.0, 250.0, 500.0)  # Envoy's buckets around a 300 ms bound
HEALTHY_RUNS, FAULT_RUNS, BATCH = 2000, 500, 250
GAUGE, GAUGE_MAX = "saturation", 0.8

ANALYSIS = Analysis.model_validate(
    {
        "interval": "30s",
        "stepDuration": "5m",
        "slos": {"errorRate": {"max": "1%"}, "latency": {"percentile": 99, "max": "300ms"}},
        "metrics": [{"name": GAUGE, "query": "saturation{{backend='{backend}'}}", "max": GAUGE_MAX}],
        "minRequests": 100,
        "failureLimit": 2,
    }
)


@dataclass(frozen=True)
class Policy:
    analysis: Analysis = ANALYSIS
    weights: tuple[int, ...] = WEIGHTS
    scrape_s: float = SCRAPE_S
    deadline_s: float = DEADLINE_S

    @property
    def interval_s(self) -> float:
        return self.analysis.interval.total_seconds()

    @property
    def step_s(self) -> float:
        return self.analysis.effective_step_duration.total_seconds()


@dataclass(frozen=True)
class Scenario:
    label: str
    world: World
    healthy: bool
    gauge: float = 0.5  # the canary's custom metric (max 0.8); +-0.03 noise per tick

    @property
    def runs(self) -> int:
        return HEALTHY_RUNS if self.healthy else FAULT_RUNS


@dataclass(frozen=True)
class Result:
    outcome: str  # promoted | rolled back | stuck
    seconds: float  # run start to its end
    detect_seconds: float | None  # the fault's onset to the rollback (fault scenarios)


@dataclass
class _Run:
    """One run's engine stand-in state."""

    judge: BenchJudge
    policy: Policy
    fault_from: int
    previous: Reading
    memory: Any
    step: int = 0
    changed_at: float = 0.0
    new_step: bool = True
    fault_at: float | None = None
    result: Result | None = None
    log: list[str] = field(default_factory=list)

    @property
    def weight(self) -> int:
        return self.policy.weights[self.step]

    def tick(self, now: float, reading: Reading) -> None:
        interval = difference(self.previous, reading)
        self.previous = reading
        at_weight = interval is not None and interval.start.timestamp() - EPOCH > self.changed_at
        inp = JudgeInput(
            outcome=Outcome.OK,
            interval=interval,
            at_weight=at_weight,
            weight=self.weight,
            step=self.step,
            weight_steps=len(self.policy.weights),
            new_step=self.new_step,
            reason="" if interval else "no new scrape",
            custom=reading.custom,
            latency=BUCKETS,
        )
        call, self.memory = self.judge(self.memory, inp)
        self.new_step = False
        if call.rollback:
            detect = None if self.fault_at is None else now - self.fault_at
            self.result = Result("rolled back", now, detect)
        elif call.passed and now - self.changed_at >= self.policy.step_s:
            if self.step == len(self.policy.weights) - 1:
                self.result = Result("promoted", now, None)
                return
            self.step += 1
            self.changed_at, self.new_step = now, True
            self._fault_onset(now)
        elif now - self.changed_at > self.policy.deadline_s:
            self.result = Result("stuck", now, None)

    def _fault_onset(self, now: float) -> None:
        if self.fault_at is None and self.fault_from >= 0 and self.weight >= self.fault_from:
            self.fault_at = now


def run_batch(policy: Policy, scenario: Scenario, seed: int, runs: int, judge: BenchJudge) -> list[Result]:
    """``runs`` independent runs of ``scenario`` under ``policy``, advanced in lockstep."""
    rng = np.random.default_rng(seed)
    traffic = Traffic(scenario.world, runs, policy.scrape_s, rng)
    weights = np.zeros(runs, dtype=np.int64)
    traffic.advance(0.0, weights)
    fault_from = -1 if scenario.healthy else scenario.world.fault_from_weight
    states = [_Run(judge, policy, fault_from, traffic.reading(i, {}), judge.fresh()) for i in range(runs)]
    for i, state in enumerate(states):
        state._fault_onset(0.0)
        weights[i] = state.weight
    now = float(rng.uniform(0.0, policy.interval_s))
    horizon = len(policy.weights) * (policy.deadline_s + policy.interval_s)
    active = list(range(runs))
    while active and now <= horizon:
        traffic.advance(now, weights)
        gauges = scenario.gauge + rng.normal(0.0, 0.03, runs)
        for i in active:
            state = states[i]
            state.tick(now, traffic.reading(i, {GAUGE: float(gauges[i])}))
            weights[i] = 0 if state.result else state.weight
        active = [i for i in active if states[i].result is None]
        now += policy.interval_s
    return [s.result or Result("stuck", now, None) for s in states]


def run(policy: Policy, scenario: Scenario, seed: int, judge: BenchJudge | None = None) -> Result:
    """One run of ``scenario`` under ``policy`` through ``judge`` (default: ours)."""
    return run_batch(policy, scenario, seed, 1, judge or Ours(policy.analysis))[0]


def scenarios() -> list[Scenario]:
    spread = 0.3
    at_slo = Latency.lognormal(0.01)
    slower = Latency.lognormal(0.01, factor=_factor_for(0.03))
    return [
        Scenario("healthy", World(20.0), True),
        Scenario("healthy", World(200.0), True),
        Scenario("healthy", World(2000.0), True),
        Scenario("healthy, +-30% per arm", World(20.0, dispersion=spread), True),
        Scenario("healthy, +-30% per arm", World(200.0, dispersion=spread), True),
        Scenario("healthy, +-30% per arm", World(2000.0, dispersion=spread), True),
        Scenario("healthy, common-mode bursts x4", World(200.0, burst=Burst()), True),
        Scenario("healthy, 1% slower than 300ms (at the SLO)", World(200.0, stable_latency=at_slo), True),
        Scenario("healthy, 0.1% errors", World(20.0, stable_error=0.001), True),
        Scenario("errors 2x", World(200.0, canary_error_ratio=2.0), False),
        Scenario("errors 2x, +-30% per arm", World(200.0, canary_error_ratio=2.0, dispersion=spread), False),
        Scenario("errors 5x", World(20.0, canary_error_ratio=5.0), False),
        Scenario(
            "latency 1% -> 3% slower than 300ms",
            World(200.0, stable_latency=at_slo, canary_latency=slower),
            False,
        ),
        Scenario(f"custom metric {GAUGE} 0.95 > max 0.8", World(200.0), False, gauge=0.95),
        Scenario("errors 2x only at weight >= 50%", World(200.0, canary_error_ratio=2.0, fault_from_weight=50), False),
    ]


def _factor_for(target: float) -> float:
    """The latency factor that makes 1% -> ``target`` of requests slower than 300 ms."""
    low, high = 1.0, 3.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if Latency.lognormal(0.01, factor=mid).above_300 < target else (low, mid)
    return (low + high) / 2


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def cell(results: list[Result], healthy: bool) -> str:
    n = len(results)
    rolled = [r for r in results if r.outcome == "rolled back"]
    if healthy:
        low, high = wilson(len(rolled), n)
        promoted = [r.seconds for r in results if r.outcome == "promoted"]
        tail = f"; promoted {100 * len(promoted) / n:.3g}%" + (
            f" in {statistics.median(promoted) / 60:.0f}m" if promoted else ""
        )
        return f"{100 * len(rolled) / n:.2f}% [{100 * low:.2f}, {100 * high:.2f}]{tail}"
    times = [r.detect_seconds for r in rolled if r.detect_seconds is not None]
    median = f" · {statistics.median(times) / 60:.1f}m" if times else ""
    passed = sum(r.outcome == "promoted" for r in results)
    return f"{100 * len(rolled) / n:.1f}%{median}" + (f" (promoted {100 * passed / n:.1f}%)" if passed else "")


def row(policy: Policy, scenario: Scenario, seed: int, judges: list[BenchJudge], runs: int) -> list[str]:
    cells = []
    for judge in judges:
        if scenario.gauge > GAUGE_MAX and isinstance(judge, Kayenta):
            cells.append("n/a (no fixed bounds)")
            continue
        results: list[Result] = []
        for batch in range(math.ceil(runs / BATCH)):
            size = min(BATCH, runs - batch * BATCH)
            results += run_batch(policy, scenario, seed * 1000 + batch, size, judge)
        cells.append(cell(results, scenario.healthy))
    return [f"{scenario.world.rps:,.0f}", scenario.label, f"{runs:,}", *cells]


def main(healthy_runs: int = HEALTHY_RUNS, fault_runs: int = FAULT_RUNS, only: int | None = None) -> None:
    """Print the table (``only``: the first scenarios only, for the smoke test)."""
    policy = Policy()
    judges: list[BenchJudge] = [Ours(policy.analysis), Flagger(gauge_max=((GAUGE, GAUGE_MAX),)), Kayenta()]
    lines = [
        f"Steps {'/'.join(map(str, policy.weights))}%, stepDuration {policy.step_s / 60:g}m, interval "
        f"{policy.interval_s:g}s, scrape {policy.scrape_s:g}s, 2 Envoy pods, stable 0.5% errors (SLO 1%), "
        f"0.1% slower than 300ms (p99 SLO); a step not passed in {policy.deadline_s / 60:g}m pauses the run. "
        "Healthy rows: false rollbacks [Wilson 95%]; promoted share and median time. Fault rows: detected "
        "(rolled back) share · median time from the fault's onset.",
        "",
        "| req/s | scenario | runs | " + " | ".join(j.name for j in judges) + " |",
        "|---:|---|---:|" + "---|" * len(judges),
    ]
    for seed, scenario in enumerate(scenarios()[:only], start=1):
        started = time.monotonic()
        runs = healthy_runs if scenario.healthy else fault_runs
        lines.append("| " + " | ".join(row(policy, scenario, seed, judges, runs)) + " |")
        print(
            f"{scenario.label} @ {scenario.world.rps:g}: {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
