"""The data the decision engine reads and writes: phases, weights, the persisted RolloutState, what
was observed on a tick (route weights, metric samples, operator commands) and judge verdicts.

Everything here is frozen and JSON-round-trippable (``to_dict``/``from_dict``) because it is
stored in the Rollout status. No I/O, no clock: times are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    AWAITING_APPROVAL = "AwaitingApproval"
    PROMOTING = "Promoting"
    PROMOTED = "Promoted"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"

    @property
    def active(self) -> bool:
        """A run is under way (traffic may be split)."""
        return self in _ACTIVE

    @property
    def final(self) -> bool:
        return self in (Phase.PROMOTED, Phase.ROLLED_BACK, Phase.ABORTED)


_ACTIVE = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL, Phase.PROMOTING, Phase.ROLLING_BACK})


@dataclass(frozen=True)
class Weights:
    """Traffic split in percent; always integers summing to 100."""

    canary: int
    stable: int

    def __post_init__(self) -> None:
        if not (0 <= self.canary <= 100 and 0 <= self.stable <= 100) or self.canary + self.stable != 100:
            raise ValueError(
                f"weights must be integers 0..100 summing to 100, got canary={self.canary} stable={self.stable}"
            )

    @classmethod
    def of_canary(cls, canary: int) -> Weights:
        return cls(canary=canary, stable=100 - canary)

    def __str__(self) -> str:
        return f"canary={self.canary} stable={self.stable}"


STABLE_ONLY = Weights(canary=0, stable=100)
CANARY_ONLY = Weights(canary=100, stable=0)


class Outcome(StrEnum):
    """What a metrics query could say; anything but OK means the numbers are not all there."""

    OK = "ok"
    NO_DATA = "no-data"  # no series at all
    ZERO_TRAFFIC = "zero-traffic"  # series exist, but no requests in the window
    PARTIAL = "partial"  # one backend (or one metric) missing
    NAN = "nan"  # a query returned NaN
    COUNTER_RESET = "counter-reset"  # a counter reset inside the window; the interval is unusable
    QUERY_ERROR = "query-error"  # the query itself is wrong
    UNAVAILABLE = "unavailable"  # Prometheus unreachable or 5xx


@dataclass(frozen=True)
class ArmCounts:
    """Counts for one backend over one window: requests, failed requests, requests slower than the SLO."""

    requests: float
    errors: float
    slow: float = 0.0

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def slow_ratio(self) -> float | None:
        return self.slow / self.requests if self.requests > 0 else None


@dataclass(frozen=True)
class MetricsSample:
    """What the metrics adapter measured for one rollout on one tick."""

    outcome: Outcome
    canary: ArmCounts | None = None
    stable: ArmCounts | None = None
    custom: Mapping[str, float] = field(default_factory=dict)
    window_seconds: float = 0.0
    detail: str = ""  # why the outcome is not OK, with the rendered query
    queries: tuple[str, ...] = ()  # the rendered queries, for explanations


class CommandKind(StrEnum):
    APPROVE = "approve"
    ABORT = "abort"
    PROMOTE = "promote"  # skip the current step's gate
    PROMOTE_FULL = "promote-full"  # go straight to 100%
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"


@dataclass(frozen=True)
class Command:
    """An operator's request (CLI or Slack), with who asked and when; ``id`` makes it idempotent."""

    kind: CommandKind
    by: str
    at: datetime
    id: str
    reason: str = ""
    ref: str = ""  # the approval request this answers (Slack buttons); an answer to another request is ignored


@dataclass(frozen=True)
class Observations:
    """Everything decide() may look at besides policy, state and now."""

    weights: Weights | None = None  # live weights read from the route; None if unreadable
    weights_error: str = ""  # why they could not be read
    metrics: MetricsSample | None = None
    commands: tuple[Command, ...] = ()
    may_start: bool = True  # False when the concurrency cap is reached


class VerdictKind(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    HOLD = "hold"  # not enough evidence either way


@dataclass(frozen=True)
class Check:
    """One judged quantity with the numbers behind it."""

    name: str  # errorRate, latency, or a custom metric's name
    verdict: VerdictKind
    value: float | None  # observed value (ratio or metric value); None when unmeasured
    limit: float | None  # the threshold it was held against
    detail: str = ""  # human explanation with the numbers
    evidence: float | None = None  # sequential judge: the evidence value (e.g. log e-value)
    threshold: float | None = None  # sequential judge: the evidence needed to decide


@dataclass(frozen=True)
class Verdict:
    """A judgement of one interval: its overall kind and every check with its numbers."""

    kind: VerdictKind
    checks: tuple[Check, ...]
    enough_data: bool
    summary: str
    canary: ArmCounts | None = None
    stable: ArmCounts | None = None
    conclusive: bool = False  # a sequential test crossed its boundary: the step may end early

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(asdict(self))
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            kind=VerdictKind(data["kind"]),
            checks=tuple(Check(**{**c, "verdict": VerdictKind(c["verdict"])}) for c in data.get("checks", ())),
            enough_data=bool(data["enough_data"]),
            summary=str(data.get("summary", "")),
            canary=ArmCounts(**data["canary"]) if data.get("canary") else None,
            stable=ArmCounts(**data["stable"]) if data.get("stable") else None,
            conclusive=bool(data.get("conclusive", False)),
        )


@dataclass(frozen=True)
class JudgeMemory:
    """What a judge carries from one interval to the next within a step or run (persisted).

    Cumulative counts per arm since the current step started, and named accumulators that a
    judge may keep (the sequential judge keeps its log evidence here).
    """

    intervals: int = 0
    canary: ArmCounts = ArmCounts(0.0, 0.0, 0.0)
    stable: ArmCounts = ArmCounts(0.0, 0.0, 0.0)
    accumulators: tuple[tuple[str, float], ...] = ()

    def get(self, name: str, default: float = 0.0) -> float:
        return dict(self.accumulators).get(name, default)

    def with_values(self, **values: float) -> JudgeMemory:
        merged = dict(self.accumulators)
        merged.update(values)
        return replace(self, accumulators=tuple(sorted(merged.items())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "intervals": self.intervals,
            "canary": asdict(self.canary),
            "stable": asdict(self.stable),
            "accumulators": dict(self.accumulators),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeMemory:
        return cls(
            intervals=int(data.get("intervals", 0)),
            canary=ArmCounts(**data.get("canary", {"requests": 0, "errors": 0})),
            stable=ArmCounts(**data.get("stable", {"requests": 0, "errors": 0})),
            accumulators=tuple(sorted((str(k), float(v)) for k, v in dict(data.get("accumulators", {})).items())),
        )


@dataclass(frozen=True)
class RolloutState:
    """All progress of one rollout; persisted in the Rollout status, restored after restarts."""

    phase: Phase = Phase.PENDING
    revision: str = ""
    stable_backend: str = ""  # the two backends this run moves traffic between (set when it starts)
    canary_backend: str = ""
    step: int = 0  # index into policy.spec.steps
    weights: Weights = STABLE_ONLY  # what rollout last decided the route must carry
    prior_weights: Weights = STABLE_ONLY  # what the route carried before that decision
    run_started_at: datetime | None = None
    step_started_at: datetime | None = None
    last_judged_at: datetime | None = None
    unavailable_since: datetime | None = None
    failures: int = 0
    verdict: Verdict | None = None
    memory: JudgeMemory = JudgeMemory()
    message: str = ""
    pause_reason: str = ""  # why a Paused rollout is paused (manual, drift, deadline, ...)
    approved_by: str = ""  # who approved the pending gate (cleared when the run moves past it)
    approvals: tuple[str, ...] = ()  # every approval of this run: "step N: who"
    approval_requested_at: datetime | None = None
    end_reason: str = ""  # why the run is rolling/rolled back or was promoted early
    aborted_by: str = ""  # who aborted (Aborted instead of RolledBack)
    handled_commands: tuple[str, ...] = ()  # ids of operator commands already acted on (bounded)
    notified: tuple[str, ...] = ()  # keys of notifications already sent this run (bounded)
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "revision": self.revision,
            "stableBackend": self.stable_backend,
            "canaryBackend": self.canary_backend,
            "step": self.step,
            "canaryWeight": self.weights.canary,
            "stableWeight": self.weights.stable,
            "priorCanaryWeight": self.prior_weights.canary,
            "runStartedAt": _iso(self.run_started_at),
            "stepStartedAt": _iso(self.step_started_at),
            "lastJudgedAt": _iso(self.last_judged_at),
            "unavailableSince": _iso(self.unavailable_since),
            "failures": self.failures,
            "verdict": self.verdict.to_dict() if self.verdict else None,
            "memory": self.memory.to_dict(),
            "message": self.message,
            "pauseReason": self.pause_reason,
            "approvedBy": self.approved_by,
            "approvalRequestedAt": _iso(self.approval_requested_at),
            "approvals": list(self.approvals),
            "endReason": self.end_reason,
            "abortedBy": self.aborted_by,
            "handledCommands": list(self.handled_commands),
            "notified": list(self.notified),
            "updatedAt": _iso(self.updated_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutState:
        canary = int(data.get("canaryWeight", 0))
        prior = int(data.get("priorCanaryWeight", canary))
        return cls(
            phase=Phase(data.get("phase", Phase.PENDING.value)),
            revision=str(data.get("revision", "")),
            stable_backend=str(data.get("stableBackend", "")),
            canary_backend=str(data.get("canaryBackend", "")),
            step=int(data.get("step", 0)),
            weights=Weights.of_canary(canary),
            prior_weights=Weights.of_canary(prior),
            run_started_at=_dt(data.get("runStartedAt")),
            step_started_at=_dt(data.get("stepStartedAt")),
            last_judged_at=_dt(data.get("lastJudgedAt")),
            unavailable_since=_dt(data.get("unavailableSince")),
            failures=int(data.get("failures", 0)),
            verdict=Verdict.from_dict(data["verdict"]) if data.get("verdict") else None,
            memory=JudgeMemory.from_dict(data.get("memory") or {}),
            message=str(data.get("message", "")),
            pause_reason=str(data.get("pauseReason", "")),
            approved_by=str(data.get("approvedBy", "")),
            approval_requested_at=_dt(data.get("approvalRequestedAt")),
            approvals=tuple(str(a) for a in data.get("approvals") or ()),
            end_reason=str(data.get("endReason", "")),
            aborted_by=str(data.get("abortedBy", "")),
            handled_commands=tuple(data.get("handledCommands", ())),
            notified=tuple(data.get("notified", ())),
            updated_at=_dt(data.get("updatedAt")),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
