"""Turning the answers of one batch group's queries into one rollout's Reading, with an honest Outcome.

Owns the rules that decide what was measured and what was not (see ``build_reading``) and the
identity of a scrape target (``target_id``). It must not do I/O or fill anything unmeasured with
zero; the one documented inference is that a target whose request series exist but has no 5xx
series had zero 5xx responses (Envoy creates a response code's series the first time that code
is seen, and the 5xx series are a subset of the request series).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollout.core.readings import LatencyBuckets, Outcome, Reading, TargetCounters
from rollout.errors import MetricsError, MetricsUnavailable
from rollout.metrics.base import AnalysisRequest, outcome_of
from rollout.metrics.queries import REQUESTS_METRIC, TARGET_EXCLUDED, backend_value, describe_buckets

Series = Mapping[str, Any]
"""One element of an instant vector as Prometheus returns it: ``{"metric": {...}, "value": [t, "v"]}``."""

ByTarget = dict[str, dict[str, float]]
"""backend label value -> target id -> value."""

Buckets = dict[str, dict[str, dict[float, float]]]
"""backend label value -> target id -> bucket bound (ms, ``inf`` for +Inf) -> cumulative count."""


def target_id(labels: Mapping[str, str]) -> str:
    """A short, stable fingerprint of a scrape target: its series' labels minus ``TARGET_EXCLUDED``."""
    kept = sorted((k, v) for k, v in labels.items() if k not in TARGET_EXCLUDED)
    return hashlib.blake2b(json.dumps(kept).encode(), digest_size=6).hexdigest()


def by_target(result: Any, backend_label: str) -> ByTarget:
    """Index an instant vector by backend label value and target id."""
    out: ByTarget = {}
    for series in _series(result):
        labels = series.get("metric", {})
        value = labels.get(backend_label)
        if value is not None:
            out.setdefault(str(value), {})[target_id(labels)] = float(series["value"][1])
    return out


def buckets_by_target(result: Any, backend_label: str) -> Buckets:
    """Index histogram bucket series by backend label value, target id and bucket bound."""
    out: Buckets = {}
    for series in _series(result):
        labels = series.get("metric", {})
        value, le = labels.get(backend_label), labels.get("le")
        if value is None or le is None:
            continue
        target = out.setdefault(str(value), {}).setdefault(target_id(labels), {})
        target[float(le)] = float(series["value"][1])  # float("+Inf") is inf
    return out


def _series(result: Any) -> list[Series]:
    if isinstance(result, list):
        return [s for s in result if isinstance(s, dict)]
    return []


@dataclass
class GroupAnswers:
    """The built-in query answers shared by every rollout of one batch group (a MetricsError where
    a query failed; ``buckets`` is None when no rollout of the group judges latency)."""

    requests_query: str
    errors_query: str
    times_query: str
    buckets_query: str = ""
    requests: ByTarget | MetricsError = field(default_factory=dict)
    errors: ByTarget | MetricsError = field(default_factory=dict)
    times: ByTarget | MetricsError = field(default_factory=dict)
    buckets: Buckets | MetricsError | None = None

    @property
    def queries(self) -> tuple[str, ...]:
        return tuple(q for q in (self.requests_query, self.errors_query, self.times_query, self.buckets_query) if q)


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


def error_outcome(error: MetricsError) -> Outcome:
    return Outcome.UNAVAILABLE if isinstance(error, MetricsUnavailable) else Outcome.QUERY_ERROR


def build_reading(
    request: AnalysisRequest,
    group: GroupAnswers,
    latency: LatencyBuckets | None,
    custom: Mapping[str, tuple[str, Any]],
    at: datetime,
) -> Reading:
    """One rollout's reading as of ``at``.

    - a failed built-in query: UNAVAILABLE or QUERY_ERROR, no counters at all;
    - no request series for either backend: NO_DATA; for one of them: PARTIAL (that arm is None);
    - a latency SLO whose bucket series (below, above, +Inf) are missing for a target of a backend:
      PARTIAL, that arm is None (its slow requests cannot be counted);
    - any NaN in an arm: NAN, that arm is None;
    - custom metrics (``custom``: name -> (rendered query, answer or MetricsError)): a failed query is
      QUERY_ERROR/UNAVAILABLE naming the rollout, the metric and the query; no series is PARTIAL;
      several series is QUERY_ERROR; NaN is NAN. The counters read are still reported.
    """
    problems: list[tuple[Outcome, str]] = []
    notes = [describe_buckets(latency)] if latency is not None and not latency.exact else []
    arms = _arms(request, group, latency, problems)
    values = _custom(request, custom, problems)
    return Reading(
        outcome=outcome_of(problems),
        taken_at=at,
        canary=arms.get("canary"),
        stable=arms.get("stable"),
        custom=values,
        latency=latency,
        detail="; ".join([d for _, d in problems] + notes),
        queries=(*group.queries, *(query for query, _ in custom.values())),
    )


def _arms(
    request: AnalysisRequest,
    group: GroupAnswers,
    latency: LatencyBuckets | None,
    problems: list[tuple[Outcome, str]],
) -> dict[str, Mapping[str, TargetCounters] | None]:
    """Counters per arm and target (an arm is absent where unmeasured); appends what is wrong to ``problems``."""
    answers: list[tuple[str, str, object]] = [
        ("requests", group.requests_query, group.requests),
        ("errors", group.errors_query, group.errors),
        ("sample times", group.times_query, group.times),
    ]
    if latency is not None:
        answers.append(("latency buckets", group.buckets_query, group.buckets))
    broken = [(name, error) for name, _, error in answers if isinstance(error, MetricsError)]
    if broken:
        name, error = broken[0]
        assert isinstance(error, MetricsError)
        others = f" ({len(broken) - 1} more built-in queries failed too)" if len(broken) > 1 else ""
        problems.append((error_outcome(error), f"{request.key}: {name}: {error}{others}"))
        return {}
    assert isinstance(group.requests, dict)
    assert isinstance(group.errors, dict)
    assert isinstance(group.times, dict)
    buckets = group.buckets if isinstance(group.buckets, dict) else {}
    values = {
        arm: backend_value(request.labels, b) for arm, b in (("canary", request.canary), ("stable", request.stable))
    }
    present = {arm: bool(group.requests.get(v)) for arm, v in values.items()}
    if not any(present.values()):
        problems.append(
            (
                Outcome.NO_DATA,
                f"no {REQUESTS_METRIC} series for canary {values['canary']!r} nor stable {values['stable']!r} "
                f"(query: {group.requests_query})",
            )
        )
        return {}
    arms: dict[str, Mapping[str, TargetCounters] | None] = {}
    for arm, value in values.items():
        if not present[arm]:
            problems.append(
                (Outcome.PARTIAL, f"no {REQUESTS_METRIC} series for {arm} {value!r} (query: {group.requests_query})")
            )
            continue
        arms[arm] = _targets(arm, value, group, buckets=buckets.get(value, {}), latency=latency, problems=problems)
    return arms


def _targets(
    arm: str,
    value: str,
    group: GroupAnswers,
    *,
    buckets: Mapping[str, Mapping[float, float]],
    latency: LatencyBuckets | None,
    problems: list[tuple[Outcome, str]],
) -> dict[str, TargetCounters] | None:
    """One arm's counters per target, or None (with the reason in ``problems``) if any is unusable."""
    assert isinstance(group.requests, dict)
    assert isinstance(group.errors, dict)
    assert isinstance(group.times, dict)
    targets: dict[str, TargetCounters] = {}
    times, errors = group.times.get(value, {}), group.errors.get(value, {})
    for target, requests in group.requests[value].items():
        at = times.get(target)
        if at is None:
            problems.append(
                (Outcome.PARTIAL, f"{arm} {value!r}: target {target} has no sample time ({group.times_query})")
            )
            return None
        slow = slow_above = 0.0
        if latency is not None:
            counts = buckets.get(target, {})
            missing = [
                "le=+Inf" if math.isinf(b) else f"le={b:g}"
                for b in (latency.below_ms, latency.above_ms, math.inf)
                if b is not None and _bucket(counts, b) is None
            ]
            if missing:
                problems.append(
                    (
                        Outcome.PARTIAL,
                        f"no latency histogram bucket {', '.join(missing)} for {arm} {value!r} "
                        f"(query: {group.buckets_query})",
                    )
                )
                return None
            total = counts[math.inf]
            slow = total - (_bucket(counts, latency.below_ms) or 0.0) if latency.below_ms is not None else total
            slow_above = total - (_bucket(counts, latency.above_ms) or 0.0) if latency.above_ms is not None else 0.0
        counters = TargetCounters(
            requests=requests, errors=errors.get(target, 0.0), at=at, slow=slow, slow_above=slow_above
        )
        if any(math.isnan(x) for x in (requests, counters.errors, at, slow, slow_above)):
            problems.append((Outcome.NAN, f"{arm} {value!r}: NaN in target {target}: {counters}"))
            return None
        targets[target] = counters
    return targets


def _bucket(counts: Mapping[float, float], bound: float) -> float | None:
    for le, n in counts.items():
        if math.isclose(le, bound, rel_tol=1e-9) or le == bound:
            return n
    return None


def _custom(
    request: AnalysisRequest, custom: Mapping[str, tuple[str, Any]], problems: list[tuple[Outcome, str]]
) -> dict[str, float]:
    """The custom metrics' values; appends what is wrong to ``problems``."""
    values: dict[str, float] = {}
    for name, (query, result) in custom.items():
        where = f"{request.key}: custom metric {name!r}"
        if isinstance(result, MetricsError):
            detail = str(result) if query in str(result) else f"{result} (query: {query})"
            problems.append((error_outcome(result), f"{where}: {detail}"))
            continue
        value = custom_value(result)
        if isinstance(value, str):
            kind = Outcome.PARTIAL if value == "returned no series" else Outcome.QUERY_ERROR
            problems.append((kind, f"{where} {value} (query: {query})"))
        elif math.isnan(value):
            problems.append((Outcome.NAN, f"{where} is NaN (query: {query})"))
        else:
            values[name] = value
    return values
