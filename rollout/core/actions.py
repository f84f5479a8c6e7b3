"""Actions: what a decision asks the runtime to do. Plain frozen data; the runtime executes them
through adapters in the order given, after persisting the new state. Nothing here does anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from rollout.core.states import Verdict, Weights


class WeightPurpose(StrEnum):
    STEP = "step"  # the next step of the plan
    REAPPLY = "reapply"  # our previous write did not land (crash between persist and write)
    PROMOTE = "promote"  # canary to 100%
    ROLLBACK = "rollback"  # stable to 100%


@dataclass(frozen=True)
class SetWeights:
    """Move traffic to ``target``. ``expected`` is what the route should carry now (None: don't check)."""

    target: Weights
    expected: Weights | None
    purpose: WeightPurpose
    reason: str


class Level(StrEnum):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True)
class Notify:
    """Tell people something once: ``key`` is unique within a run and is recorded in the state."""

    key: str
    event: str  # stable event name, e.g. rollout.step, rollout.rolled-back
    level: Level
    message: str
    verdict: Verdict | None = None


@dataclass(frozen=True)
class RequestApproval:
    """Ask the approvers whether the run may pass the approval gate at ``step``."""

    key: str
    step: int
    message: str
    approvers: tuple[str, ...] = ()
    channel: str | None = None


@dataclass(frozen=True)
class ScheduleNext:
    """When the engine next needs a tick (the runtime may tick earlier, never needs to tick later)."""

    at: datetime


@dataclass(frozen=True)
class Record:
    """One line of the decision log: the stable event name and its numbers."""

    event: str
    message: str
    fields: tuple[tuple[str, str], ...] = field(default_factory=tuple)


Action = SetWeights | Notify | RequestApproval | ScheduleNext | Record
