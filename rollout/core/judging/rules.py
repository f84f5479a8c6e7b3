"""The fixed-limit rules every judge applies the same way: custom (gauge) metrics against their
``min``/``max``, what a tick without usable data means (``noData``), and counting failed judgements
towards ``failureLimit``. Also how numbers are written in verdicts.

Owns those rules so that ``judge: sequential`` and ``judge: threshold`` cannot drift apart (a custom
metric is judged by both; it can never be ignored). Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from rollout.core.judging.base import JudgeInput
from rollout.core.judging.memory import JudgeMemory
from rollout.core.readings import Outcome
from rollout.core.verdicts import Check, VerdictKind
from rollout.policy.analysis import Analysis, CustomMetric, NoDataPolicy


class Data(StrEnum):
    """What a tick brings to judge."""

    USABLE = "usable"  # a new interval in which the canary served requests
    NOTHING_NEW = "nothing-new"  # no new scrape (or 0% canary): a quiet hold, never a no-data failure
    MISSING = "missing"  # no series, NaN, or the canary served nothing: ``noData`` decides
    UNAVAILABLE = "unavailable"  # Prometheus unreachable or a broken query: hold (the engine times it out)


def screen(inp: JudgeInput) -> tuple[Data, str]:
    """Classify a tick's input and say why in words."""
    why = f": {inp.reason}" if inp.reason else ""
    if inp.weight is not None and inp.weight <= 0 and (inp.interval is None or inp.interval.canary.requests <= 0):
        return Data.NOTHING_NEW, "the canary carries no traffic at 0%"
    if inp.interval is None:
        if inp.outcome in (Outcome.OK, Outcome.PARTIAL):
            return Data.NOTHING_NEW, f"no new scrape since the last judgement{why}"
        if inp.outcome in (Outcome.NO_DATA, Outcome.NAN):
            return Data.MISSING, f"no data ({inp.outcome.value}){why}"
        return Data.UNAVAILABLE, f"metrics {inp.outcome.value}{why}"
    if inp.interval.canary.requests <= 0:
        return Data.MISSING, f"the canary served no requests in the last {inp.interval.seconds:.0f}s"
    return Data.USABLE, ""


def share_text(weight: int | None) -> str:
    """The canary's share as the verdicts say it: "20%", or the requests an A/B step matches."""
    return "the requests that match (A/B)" if weight is None else f"{weight}%"


def no_data_kind(analysis: Analysis) -> VerdictKind:
    return {
        NoDataPolicy.HOLD: VerdictKind.HOLD,
        NoDataPolicy.FAIL: VerdictKind.FAIL,
        NoDataPolicy.PASS: VerdictKind.PASS,
    }[analysis.no_data]


def gauge_checks(metrics: Sequence[CustomMetric], values: Mapping[str, float]) -> tuple[Check, ...]:
    """Every custom metric against its bounds: FAIL outside, PASS inside, HOLD without a value."""
    checks: list[Check] = []
    for metric in metrics:
        bounds = _bounds(metric.min, metric.max)
        value = values.get(metric.name)
        if value is None or not math.isfinite(value):
            checks.append(
                Check(
                    metric.name,
                    VerdictKind.HOLD,
                    None,
                    metric.max if metric.max is not None else metric.min,
                    f"{metric.name}: no value ({bounds}); holding",
                    test="gauge",
                )
            )
            continue
        low = metric.min is not None and value < metric.min
        high = metric.max is not None and value > metric.max
        limit = metric.min if low else metric.max if metric.max is not None else metric.min
        where = f"below min {metric.min:.4g}" if low else f"above max {metric.max:.4g}" if high else f"within {bounds}"
        checks.append(
            Check(
                metric.name,
                VerdictKind.FAIL if low or high else VerdictKind.PASS,
                value,
                limit,
                f"{metric.name} {value:.4g} {where}",
                test="gauge",
            )
        )
    return tuple(checks)


@dataclass(frozen=True)
class Tally:
    """The failure count after this tick, and whether it reached ``failureLimit``."""

    memory: JudgeMemory
    counted: bool  # this tick added a failure
    rollback: bool

    def words(self, analysis: Analysis) -> str:
        return f"{self.memory.failures} of {analysis.failure_limit} failures"


def tally(analysis: Analysis, memory: JudgeMemory, failed: bool) -> Tally:
    """Count one failed fixed-limit judgement (when ``failed``) and compare with ``failureLimit``."""
    if failed:
        memory = replace(memory, failures=memory.failures + 1)
    return Tally(memory, failed, memory.failures >= analysis.failure_limit)


def _bounds(low: float | None, high: float | None) -> str:
    parts = [f"min {low:.4g}"] if low is not None else []
    if high is not None:
        parts.append(f"max {high:.4g}")
    return ", ".join(parts)


def pct(rate: float | None) -> str:
    """A rate as a percentage with 3 significant digits ("0.52%"); "n/a" when unmeasured."""
    if rate is None:
        return "n/a"
    return f"{100 * rate:.3g}%"


def count(value: float) -> str:
    """A count as people write it: "12,345" (one decimal when fractional)."""
    return f"{value:,.0f}" if abs(value - round(value)) < 1e-9 else f"{value:,.1f}"


def ratio_text(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:.3g}"


def rate(events: float, requests: float) -> float | None:
    return events / requests if requests > 0 else None
