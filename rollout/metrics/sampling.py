"""Turning query results into one rollout's MetricsSample: counts per arm and an honest Outcome.

Owns the rules that decide what was measured and what was not (see ``build_sample``). It must not
do I/O or fill anything unmeasured with zero; the one documented inference is that a backend whose
request series exist but has no 5xx series had zero 5xx responses (Envoy creates a response
code's series the first time that code is seen).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout.core.states import ArmCounts, MetricsSample, Outcome
from rollout.errors import MetricsError, MetricsUnavailable
from rollout.metrics.base import AnalysisRequest
from rollout.metrics.queries import REQUESTS_METRIC, BucketChoice, backend_value

Vector = dict[str, float]
Result = Vector | MetricsError

PRECEDENCE = (
    Outcome.UNAVAILABLE,
    Outcome.QUERY_ERROR,
    Outcome.NO_DATA,
    Outcome.PARTIAL,
    Outcome.COUNTER_RESET,
    Outcome.NAN,
    Outcome.ZERO_TRAFFIC,
)
"""When several things are wrong, the sample's outcome is the first of these; detail lists all."""


@dataclass
class GroupResults:
    """The built-in query results shared by every rollout of one batch group."""

    requests_query: str
    errors_query: str
    resets_query: str
    requests: Result = field(default_factory=dict)
    errors: Result = field(default_factory=dict)
    resets: Result = field(default_factory=dict)
    slow: dict[float, tuple[BucketChoice | None, str, Result]] = field(default_factory=dict)


def error_sample(request: AnalysisRequest, detail: str) -> MetricsSample:
    return MetricsSample(outcome=Outcome.QUERY_ERROR, window_seconds=request.window_seconds, detail=detail)


def custom_value(result: Any) -> float | str:
    """The single value of a custom metric's result, or a sentence saying why there is none."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return float(result[1])  # a scalar: [time, "value"]
    if isinstance(result, list):
        if not result:
            return "returned no series"
        if len(result) > 1:
            labels = [json.dumps(s.get("metric", {}), sort_keys=True) for s in result[:3]]
            return f"returned {len(result)} series (aggregate it to one), e.g. {', '.join(labels)}"
        return float(result[0]["value"][1])
    return f"returned an unexpected result {result!r}"


def _error_outcome(error: MetricsError) -> Outcome:
    return Outcome.UNAVAILABLE if isinstance(error, MetricsUnavailable) else Outcome.QUERY_ERROR


def build_sample(
    request: AnalysisRequest,
    group: GroupResults,
    custom: Mapping[str, Any],
    custom_queries: Mapping[str, str],
) -> MetricsSample:
    """One rollout's sample.

    - a failed built-in query: UNAVAILABLE or QUERY_ERROR, no counts;
    - no request series for either backend: NO_DATA; for one of them: PARTIAL (that arm is None);
    - a latency SLO whose histogram bucket is missing for a backend with requests: PARTIAL;
    - a counter reset of the request counters inside the window: COUNTER_RESET (counts kept, for
      explanations only);
    - any NaN: NAN; canary requests == 0 over the window: ZERO_TRAFFIC (a stable arm with zero
      requests is a measured zero, reported as is);
    - custom metrics: a failed query is QUERY_ERROR/UNAVAILABLE naming the rollout, the metric and
      the query; no series is NO_DATA; several series is QUERY_ERROR; NaN is NAN.
    """
    problems: list[tuple[Outcome, str]] = []
    notes: list[str] = []
    queries = [group.requests_query, group.errors_query, group.resets_query]
    slow_result: Result | None = None
    bucket: BucketChoice | None = None
    if request.latency_bound_seconds is not None:
        bucket, slow_query, slow_result = group.slow[request.latency_bound_seconds]
        if slow_query:
            queries.append(slow_query)
        if bucket is not None and not bucket.exact:
            notes.append(bucket.describe())

    arms = _arms(request, group, slow_result, bucket, queries=queries, problems=problems)
    custom_values = _custom(request, custom, custom_queries, queries, problems)

    outcome = min((o for o, _ in problems), key=PRECEDENCE.index, default=Outcome.OK)
    return MetricsSample(
        outcome=outcome,
        canary=arms["canary"],
        stable=arms["stable"],
        custom=custom_values,
        window_seconds=request.window_seconds,
        detail="; ".join([d for _, d in problems] + notes),
        queries=tuple(dict.fromkeys(queries)),
    )


def _arms(
    request: AnalysisRequest,
    group: GroupResults,
    slow_result: Result | None,
    bucket: BucketChoice | None,
    *,
    queries: list[str],
    problems: list[tuple[Outcome, str]],
) -> dict[str, ArmCounts | None]:
    """Counts per arm (None where unmeasured); appends what is wrong to ``problems``."""
    arms: dict[str, ArmCounts | None] = {"canary": None, "stable": None}
    failed = [
        (name, res)
        for name, res in (
            ("requests", group.requests),
            ("errors", group.errors),
            ("resets", group.resets),
            ("slow requests", slow_result),
        )
        if isinstance(res, MetricsError)
    ]
    if failed:
        name, error = failed[0]
        assert isinstance(error, MetricsError)
        others = f" ({len(failed) - 1} more built-in queries failed too)" if len(failed) > 1 else ""
        problems.append((_error_outcome(error), f"{request.key}: {name}: {error}{others}"))
        return arms
    assert isinstance(group.requests, dict)
    assert isinstance(group.errors, dict)
    assert isinstance(group.resets, dict)
    assert slow_result is None or isinstance(slow_result, dict)
    names = {"canary": request.canary, "stable": request.stable}
    values = {arm: backend_value(request.labels, b) for arm, b in names.items()}
    present = {arm: v in group.requests for arm, v in values.items()}
    if not any(present.values()):
        problems.append(
            (
                Outcome.NO_DATA,
                f"no {REQUESTS_METRIC} series for canary "
                f"{values['canary']!r} nor stable {values['stable']!r} "
                f"(query: {group.requests_query})",
            )
        )
    for arm, value in values.items():
        if not present[arm]:
            if any(present.values()):
                problems.append(
                    (
                        Outcome.PARTIAL,
                        f"no {REQUESTS_METRIC} series for {arm} {value!r} (query: {group.requests_query})",
                    )
                )
            continue
        requests = group.requests[value]
        errors = group.errors.get(value, 0.0)
        slow = 0.0
        if slow_result is not None:
            if value not in slow_result:
                le = f"le={bucket.le_ms:g}" if bucket else "?"
                problems.append(
                    (
                        Outcome.PARTIAL,
                        f"no latency histogram bucket {le} for {arm} {value!r} (query: {queries[-1]})",
                    )
                )
                continue
            slow = slow_result[value]
        if group.resets.get(value, 0.0) > 0:
            problems.append(
                (
                    Outcome.COUNTER_RESET,
                    f"{arm} {value!r}: request counters reset "
                    f"{group.resets[value]:g} time(s) inside the window "
                    f"(query: {group.resets_query})",
                )
            )
        if any(math.isnan(x) for x in (requests, errors, slow)):
            problems.append((Outcome.NAN, f"{arm} {value!r}: NaN in requests={requests} errors={errors} slow={slow}"))
        arms[arm] = ArmCounts(requests=requests, errors=errors, slow=slow)
    canary = arms["canary"]
    if canary is not None and canary.requests == 0:
        problems.append(
            (
                Outcome.ZERO_TRAFFIC,
                f"canary {values['canary']!r} served no requests in the last {request.window_seconds:g}s",
            )
        )
    return arms


def _custom(
    request: AnalysisRequest,
    custom: Mapping[str, Any],
    custom_queries: Mapping[str, str],
    queries: list[str],
    problems: list[tuple[Outcome, str]],
) -> dict[str, float]:
    """The custom metrics' values; appends what is wrong to ``problems``."""
    values: dict[str, float] = {}
    for name, result in custom.items():
        query = custom_queries[name]
        queries.append(query)
        where = f"{request.key}: custom metric {name!r}"
        if isinstance(result, MetricsError):
            problems.append((_error_outcome(result), f"{where}: {result}"))
            continue
        value = custom_value(result)
        if isinstance(value, str):
            kind = Outcome.NO_DATA if value == "returned no series" else Outcome.QUERY_ERROR
            problems.append((kind, f"{where} {value} (query: {query})"))
        elif math.isnan(value):
            problems.append((Outcome.NAN, f"{where} is NaN (query: {query})"))
        else:
            values[name] = value
    return values
