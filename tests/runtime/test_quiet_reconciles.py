"""What a reconcile that changes nothing costs: the policy validated once per spec version, the
stored state parsed once per resourceVersion, no status write for numbers alone (inside messages
too), flushes of the judge's numbers spread over the flush period, DEBUG instead of INFO for the
decision line, and a batch started for an interval as soon as a run needs it."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest

from rollout.core.readings import Reading
from rollout.kube.rollouts import RolloutObject
from rollout.metrics.base import AnalysisRequest
from rollout.policy import loading
from rollout.runtime import reconciling
from rollout.runtime.batching import MetricsBatcher
from rollout.runtime.flushing import material
from tests.runtime.fakes import rollout_doc
from tests.runtime.test_reconciling import Shell

PAUSED: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"pause": {}},
]  # Paused after two ticks: the judge goes on, nothing else moves


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def paused_fleet(n: int) -> tuple[Shell, list[str], Seconds]:
    shell = Shell()
    shell.capacity.limit = n
    seconds = Seconds()
    shell.reconciler.monotonic = seconds
    keys = [shell.rollouts.put(rollout_doc(name=f"r{i}", namespace=f"t{i}", steps=PAUSED)) for i in range(n)]
    return shell, keys, seconds


def tick(shell: Shell, keys: list[str], seconds: Seconds) -> None:
    shell.clock.advance(10)
    seconds.now += 10
    shell.batcher.collect(10.0, shell.clock.now)
    for key in keys:
        shell.reconcile(key)


def test_the_policy_is_validated_once_per_spec_version(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = loading.load_object

    def counting(obj: Any, source: str) -> Any:
        calls.append(source)
        return real(obj, source)

    monkeypatch.setattr(reconciling, "load_object", counting)
    shell = Shell()
    shell.rollouts.put(rollout_doc(steps=PAUSED))
    for _ in range(6):
        shell.tick()
    assert len(calls) == 1, "status writes (new resourceVersions) are not new specs"
    shell.rollouts.put(rollout_doc(steps=PAUSED))  # the same spec again: a new generation
    shell.tick()
    shell.rollouts.objects["team/shop"]["metadata"]["labels"] = {"team": "shop"}  # metadata only: no new generation
    shell.tick()
    assert len(calls) == 3


def test_the_stored_state_is_parsed_once_per_resource_version(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: Counter[str] = Counter()
    real = RolloutObject.state

    def counting(self: RolloutObject) -> Any:
        parsed[self.resource_version] += 1
        return real(self)

    monkeypatch.setattr(RolloutObject, "state", counting)
    shell = Shell()
    shell.reconciler.monotonic = lambda: 0.0  # never flush: a quiet tick writes nothing at all
    shell.rollouts.put(rollout_doc(steps=[{"setWeight": 20}, {"pause": {"duration": "1h"}}]))
    for _ in range(8):
        shell.tick()
    assert shell.phase() == "Paused"
    assert max(parsed.values()) == 1, parsed


def test_numbers_alone_are_not_material_but_words_are() -> None:
    def status(message: str, **state: Any) -> dict[str, Any]:
        return {
            "message": message,
            "conditions": [{"type": "Progressing", "status": "True", "message": message}],
            "state": {"message": message, "phase": "Progressing", **state},
        }

    running = "step 1/2: canary at 10% since 12:00:00; pass: not worse than 2x stable, 2,403 canary requests at 10%"
    later = running.replace("2,403", "2,643")
    held = "step 1/2: canary at 10% since 12:00:00; hold: not enough evidence yet on errorRate"
    assert material(status(running)) == material(status(later))
    assert material(status(running)) != material(status(held))
    assert material(status(running, step=1)) != material(status(running, step=2))  # state numbers are fields


def test_flushes_of_the_judges_numbers_are_spread_over_the_flush_period() -> None:
    shell, keys, seconds = paused_fleet(60)
    for _ in range(3):
        tick(shell, keys, seconds)
    assert {shell.phase(k) for k in keys} == {"Paused"}
    shell.reconciler.flush_seconds = 60.0
    per_tick, per_rollout = [], Counter[str]()
    for _ in range(18):  # three flush periods of six 10 s ticks
        before = len(shell.rollouts.writes)
        tick(shell, keys, seconds)
        written = shell.rollouts.writes[before:]
        per_tick.append(len(written))
        per_rollout.update(key for key, _ in written)
    assert sum(per_tick) in range(3 * 60 - 60, 3 * 60 + 1), "about one flush per rollout and period"
    assert max(per_tick) <= 25, f"not all in the same tick: {per_tick}"
    assert set(per_rollout.values()) <= {2, 3}, "each rollout flushes once per period (its own phase)"


def test_a_quiet_decision_is_logged_at_debug_and_a_change_at_info(caplog: pytest.LogCaptureFixture) -> None:
    shell = Shell()
    shell.reconciler.monotonic = lambda: 0.0
    shell.rollouts.put(rollout_doc(steps=PAUSED))
    with caplog.at_level(logging.DEBUG, logger="rollout.reconcile"):
        shell.tick()  # the run starts: a change
        started = [r for r in caplog.records if getattr(r, "event", "") == "rollout.decision"]
        assert [r.levelno for r in started] == [logging.INFO]
        for _ in range(5):
            shell.tick()
        quiet = [r.levelno for r in caplog.records if getattr(r, "event", "") == "rollout.decision"][-2:]
    assert shell.phase() == "Paused" and quiet == [logging.DEBUG, logging.DEBUG]


def test_the_first_request_of_an_interval_starts_its_batches_at_once() -> None:
    started: list[float] = []

    class Nothing:
        def collect(self, batch: Any, at: Any) -> dict[str, Reading]:
            return {}

    batcher = MetricsBatcher(Nothing(), on_interval=started.append)

    def request(key: str, interval: float) -> AnalysisRequest:
        return AnalysisRequest(
            key=key, namespace="ns", stable="a", canary="b", interval_seconds=interval, latency_bound_seconds=None
        )

    batcher.register(request("ns/a", 5.0))
    batcher.register(request("ns/b", 5.0))
    batcher.register(request("ns/a", 5.0))
    batcher.register(request("ns/c", 30.0))
    batcher.forget("ns/c")
    batcher.register(request("ns/c", 30.0))
    assert started == [5.0, 30.0], "once per interval, the first time a run needs it"
