"""Verdicts: what a judge concluded about the canary, with every number behind it.

Owns ``VerdictKind``, ``Check`` (one judged quantity) and ``Verdict`` (one judgement). They are
persisted in the Rollout status and rendered in logs, Events, Slack and ``/metrics``, so every
float here is finite or None (JSON has no inf/NaN). Pure data; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict

from rollout.core.readings import ArmCounts
from rollout.core.serialized import CAMEL_CASE


class VerdictKind(StrEnum):
    PASS = "pass"  # the step may end (once its minimum time at weight is over)
    FAIL = "fail"  # a check failed; ``Verdict.rollback`` says whether that ends the run
    HOLD = "hold"  # not enough evidence either way, or nothing new to judge


@dataclass(frozen=True)
class Check:
    """One judged quantity (``errorRate``, ``latency`` or a custom metric's name) with its numbers.

    Rates are fractions (0.012 is 1.2%), never percentages of percentages. ``value``/``limit`` are
    what the check held against each other: for a relative test the canary/stable ``ratio`` and the
    ratio that counts as a regression; for an absolute or threshold test the canary's rate (or the
    metric's value) and the SLO (or bound).
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    name: str
    verdict: VerdictKind
    value: float | None  # the judged value (see above); None when unmeasured
    limit: float | None  # what it was held against
    detail: str = ""  # one human sentence with the numbers
    canary_rate: float | None = None  # canary events / canary requests over the judged data
    stable_rate: float | None = None  # the same for stable
    slo: float | None = None  # the SLO as a rate (errorRate max, latency's allowed slow share)
    ratio: float | None = None  # canary_rate / stable_rate
    ratio_low: float | None = None  # always-valid confidence interval of the ratio
    ratio_high: float | None = None
    evidence: float | None = None  # sequential judge: log e-value of the test closest to deciding
    threshold: float | None = None  # the log e-value at which that test decides
    test: str = ""  # relative | absolute | threshold | gauge


@dataclass(frozen=True)
class Verdict:
    """One judgement of the canary: its kind, whether it ends the run, and every check.

    ``enough_data``: at least ``minRequests`` canary requests were judged at the current step's
    weight; no promotion without it. ``rollback``: the run must roll back now (a sequential test
    crossed its fail boundary, or ``failureLimit`` failed intervals). ``canary``/``stable``: what
    the current step's verdict rests on (requests served at the step's weight).
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    kind: VerdictKind
    checks: tuple[Check, ...]
    enough_data: bool
    summary: str  # one line, the decision sentence first
    rollback: bool = False
    canary: ArmCounts | None = None
    stable: ArmCounts | None = None
