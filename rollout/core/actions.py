"""Actions: what a decision asks the runtime to do. Plain frozen data; the runtime executes them
through adapters in the order given, after persisting the new state. Nothing here does anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from rollout.core.matches import RouteMatch
from rollout.core.states import Weights
from rollout.core.verdicts import Verdict


class WeightPurpose(StrEnum):
    STEP = "step"  # the next step of the plan
    REAPPLY = "reapply"  # our previous write did not land (crash between persist and write, or a lost race)
    PROMOTE = "promote"  # canary to 100%
    ROLLBACK = "rollback"  # stable to 100%


@dataclass(frozen=True)
class SetWeights:
    """Move traffic to ``target``. ``expected`` is what the route should carry now (None: don't check)."""

    target: Weights
    expected: Weights | None
    purpose: WeightPurpose
    reason: str


@dataclass(frozen=True)
class SetMatch:
    """Put the A/B step's managed route (or rule) in place carrying ``target``; None removes it.

    ``expected`` is what rollout believes is there now (None: no managed route); when ``check`` is
    set and the route holds something else, nothing is written (someone else changed it). Removal
    for a rollback or an abort is unchecked. Always executed before the weights of the same tick.
    """

    target: RouteMatch | None
    expected: RouteMatch | None
    check: bool
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
    """Ask the approvers whether the run may pass the approval gate at step ``number`` (1-based)."""

    key: str
    number: int
    message: str
    approvers: tuple[str, ...] = ()
    channel: str | None = None


class Resolution(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed-out"
    CLOSED = "closed"  # no longer asked: skipped, aborted, superseded or the run ended otherwise


@dataclass(frozen=True)
class ApprovalResolved:
    """The approval request ``key`` is answered or no longer asked (update the message in place)."""

    key: str
    number: int
    resolution: Resolution
    by: str = ""  # who approved or rejected
    detail: str = ""  # e.g. "paused" / "rolled back" after a timeout


@dataclass(frozen=True)
class ScheduleNext:
    """When the engine next needs a tick; the runtime runs it then (or earlier), never later.

    ``at <= now`` asks for a tick as soon as the runtime can (e.g. to see a write land).
    """

    at: datetime


Action = SetMatch | SetWeights | Notify | RequestApproval | ApprovalResolved | ScheduleNext
