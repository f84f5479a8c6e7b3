"""The judge memory round-trips through the status (pydantic, camelCase), stays finite and compact;
the latency-bucket choice and its warning."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic.alias_generators import to_camel

from rollout.core.judging import JudgeMemory
from rollout.core.judging.latency import ENVOY_DEFAULT_BUCKETS_MS, bucket_warning, latency_buckets
from rollout.core.readings import LatencyBuckets
from rollout.metrics.queries import ENVOY_DEFAULT_BUCKETS_MS as METRICS_BUCKETS
from tests.core.judge_inputs import Driver, analysis


def _walk(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [v for item in value.values() for v in _walk(item)]
    if isinstance(value, list):
        return [v for item in value for v in _walk(item)]
    return []


class Status(BaseModel):
    """How the status persists the memory: a pydantic model with camelCase aliases."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    memory: JudgeMemory = JudgeMemory()


def test_memory_round_trips_through_json_with_camel_case_aliases() -> None:
    run = Driver(analysis(), weight=50)
    for _ in range(3):
        run.tick((4000, 40, 30, 3), (4000, 20, 15, 1))
    run.move(100)
    run.tick((8000, 400, 30, 30))
    text = Status(memory=run.memory).model_dump_json(by_alias=True)
    dumped = json.loads(text)["memory"]
    assert all(math.isfinite(v) for v in _walk(dumped))
    assert {"stableRun", "restarts", "failures", "slos"} <= set(dumped)
    assert "slowAbove" in dumped["canary"]
    assert set(dumped["slos"][0]) == {"name", "fail", "step", "absolute", "failed"}
    assert Status.model_validate_json(text).memory == run.memory


def test_memory_is_compact() -> None:
    run = Driver(analysis(), weight=50)
    run.tick((4000, 40, 30, 3), (4000, 20, 15, 1))
    text = json.dumps(TypeAdapter(JudgeMemory).dump_python(run.memory, mode="json"))
    assert len(run.memory.slos) == 2
    assert all(len(s.fail) + len(s.step) + len(s.absolute) <= 24 for s in run.memory.slos)
    assert len(text) < 2000


def test_a_new_run_starts_from_the_default_memory() -> None:
    assert JudgeMemory() == TypeAdapter(JudgeMemory).validate_python({})


def test_the_default_buckets_are_envoys() -> None:
    assert ENVOY_DEFAULT_BUCKETS_MS == METRICS_BUCKETS


@pytest.mark.parametrize(
    ("bound", "expected"),
    [
        (300.0, LatencyBuckets(300.0, 250.0, 500.0)),
        (250.0, LatencyBuckets(250.0, 250.0, 250.0)),
        (0.1, LatencyBuckets(0.1, None, 0.5)),
        (5e6, LatencyBuckets(5e6, 3600000.0, None)),
    ],
)
def test_latency_buckets_around_the_bound(bound: float, expected: LatencyBuckets) -> None:
    assert latency_buckets(bound) == expected


def test_bucket_warning() -> None:
    assert bucket_warning(250.0) is None
    warning = bucket_warning(300.0)
    assert warning is not None
    assert "300ms is not a histogram bucket bound" in warning
    assert "250ms" in warning
    assert "500ms" in warning
    assert "add a 300ms bucket" in warning
    assert bucket_warning(300.0, (100.0, 300.0, 1000.0)) is None
    assert "above every histogram bucket" in (bucket_warning(5000.0, (100.0, 1000.0)) or "")
