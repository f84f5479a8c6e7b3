"""The scale model reads its inputs from the bench's rows as its docstring says and projects them
as stated: judging splits across shards, the cache and the watch do not."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.bench.scale_model import inputs, project


@dataclass(frozen=True)
class Row:
    n: int
    interval: float
    phase: str
    daemon_cpu: float
    rss_mib: float
    queries: tuple[float, float]
    status_writes: tuple[float, float]


@dataclass(frozen=True)
class Standby:
    n: int
    cpu: float
    rss_mib: float
    writes_per_second: float


ROWS = [
    Row(1, 5.0, "idle", 0.001, 85.0, (0.0, 0.0), (0.0, 0.0)),
    Row(
        1000, 5.0, "steady", 0.2, 155.0, (4.0, 4.0), (1000 * 5 / 60 + 10, 100.0)
    ),  # 83.3 flushes per tick + 10 material
    Row(1000, 5.0, "idle", 0.01, 160.0, (0.0, 0.0), (0.0, 0.0)),
]


def test_inputs_come_from_the_largest_steady_phase_and_the_standby() -> None:
    i = inputs(ROWS, [Standby(1000, 0.01, 125.0, 20.0)])
    assert i is not None
    assert i.c_tick == pytest.approx(0.2 / (1000 / 5.0))  # 1 ms per rollout per tick
    assert i.c_echo == pytest.approx(0.01 / 20.0)
    assert i.base == 85.0
    assert i.m_cache == pytest.approx(40 / 1000) and i.m_work == pytest.approx(30 / 1000)
    assert i.w_material == pytest.approx(10 / 1000, rel=1e-3)
    assert i.q == 4.0
    assert inputs(ROWS, []) is None, "no standby measured: no model"


def test_shards_split_the_judging_not_the_cache_nor_the_watch() -> None:
    i = inputs(ROWS, [Standby(1000, 0.01, 125.0, 20.0)])
    assert i is not None
    one, ten = project(i, 100_000, 1, 30.0, 600.0), project(i, 100_000, 10, 30.0, 600.0)
    assert ten["writes"] == one["writes"] and ten["queries"] == 10 * one["queries"]
    judging = i.c_tick * 100_000 / 30.0
    assert one["cpu"] - ten["cpu"] == pytest.approx(judging * 0.9)
    assert one["rss"] - ten["rss"] == pytest.approx(i.m_work * 100_000 * 0.9)
