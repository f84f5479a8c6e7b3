"""The persisted state of one rollout and what the engine observes on a tick.

Owns ``RolloutState`` (everything a run needs to resume after a restart, stored in the Rollout's
``status.state``), its sub-states (phase, why it is paused, the route writes in flight, the route
problem being reported), weights, operator commands and the per-tick ``Observations``. This is
the one declaration of the persisted state: ``rollout.core.persisting`` derives its JSON form and
the CRD's status schema from these dataclasses, so a field added here is stored, loaded and
declared with no other edit. Everything is frozen; no I/O, no clock (times are passed in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict

from rollout.core.judging import JudgeMemory
from rollout.core.matches import RouteMatch
from rollout.core.readings import Reading
from rollout.core.serialized import CAMEL_CASE
from rollout.core.verdicts import Verdict
from rollout.policy.models import RouterSpec


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


class PauseReason(StrEnum):
    """Why a Paused run is paused. Transitions depend on this, never on the human ``pause_detail``."""

    STEP = "PauseStep"  # a pause step of the plan
    MANUAL = "Manual"  # `rollout pause`
    DRIFT = "Drift"  # someone else changed the route's weights
    DEADLINE = "ProgressDeadline"  # a step got no passing verdict within progressDeadline
    APPROVAL_TIMEOUT = "ApprovalTimeout"  # nobody answered an approval in time (onTimeout: pause)
    ROUTE_ERROR = "RouteError"  # the route cannot be read or written for a reason retrying will not fix


@dataclass(frozen=True)
class Weights:
    """Traffic split in percent; always integers summing to 100."""

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    canary: int
    stable: int

    def __post_init__(self) -> None:
        ok = all(type(w) is int for w in (self.canary, self.stable))
        if not ok or not (0 <= self.canary <= 100 and 0 <= self.stable <= 100) or self.canary + self.stable != 100:
            raise ValueError(
                f"weights must be integers 0..100 summing to 100, got canary={self.canary!r} stable={self.stable!r}"
            )

    @classmethod
    def of_canary(cls, canary: int) -> Weights:
        return cls(canary=canary, stable=100 - canary)

    def __str__(self) -> str:
        return f"canary={self.canary} stable={self.stable}"


STABLE_ONLY = Weights(canary=0, stable=100)
CANARY_ONLY = Weights(canary=100, stable=0)


class ProblemKind(StrEnum):
    """What went wrong with the route; ``permanent`` kinds are not retried as if transient."""

    NOT_FOUND = "RouteNotFound"
    BACKEND_MISSING = "BackendNotInRoute"
    FORBIDDEN = "RouteForbidden"
    SCHEMA = "RouteSchemaError"
    NOT_ACCEPTED = "RouteNotAccepted"
    CONFLICT = "RouteConflict"
    UNAVAILABLE = "RouteUnavailable"  # the API server could not be reached, or any other transient failure

    @property
    def permanent(self) -> bool:
        return self in (ProblemKind.NOT_FOUND, ProblemKind.BACKEND_MISSING, ProblemKind.FORBIDDEN, ProblemKind.SCHEMA)


@dataclass(frozen=True)
class RouteProblem:
    """Why the route could not be read or written, as an adapter reported it."""

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    kind: ProblemKind
    message: str


@dataclass(frozen=True)
class PendingWrite:
    """A weight change the engine asked for and has not yet seen on the route.

    ``before`` is what the route carried when the write was decided: while the write is pending, a
    route still at ``before`` means the write did not land (re-apply it); once the route has been
    seen at ``target`` the write is confirmed and any other change is someone else's (drift).
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    target: Weights
    before: Weights
    decided_at: datetime
    attempts: int = 1


@dataclass(frozen=True)
class PendingMatch:
    """A change to the A/B step's managed route (create, change or remove) not yet seen on the route.

    Like ``PendingWrite``: while it is pending, a managed route still as it was ``before`` (None:
    there was none) means the write did not land; once seen as ``target`` (None: removed) it is
    confirmed, and any other change is someone else's.
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    decided_at: datetime
    target: RouteMatch | None = None
    before: RouteMatch | None = None
    attempts: int = 1


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
    """An operator's request (CLI or Slack), as the API server recorded it; ``id`` makes it idempotent.

    ``by`` is the identity the API server authenticated for whoever created the command;
    ``slack_user`` is set only for commands the daemon itself recorded for a verified Slack click.
    ``refusal`` is non-empty when the runtime found the requester not allowed to do this (the
    engine then records the refusal and does nothing else).
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    kind: CommandKind
    by: str
    at: datetime
    id: str
    reason: str = ""
    ref: str = ""  # the approval request this answers (Slack buttons); an answer to another request is ignored
    slack_user: str = ""
    slack_groups: tuple[str, ...] = ()  # the Slack user groups (S...) the clicker was in when clicking
    refusal: str = ""


@dataclass(frozen=True)
class ChatThread:
    """The run's chat thread: channel ID and parent message ts, kept so a restarted daemon continues it."""

    # Recorded by the runtime after the notifier posted the parent message (``run``: its ``run_id``).
    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    channel: str
    ts: str
    run: str


@dataclass(frozen=True)
class CommandResult:
    """What the engine did with one command: ``accepted`` or not, and why, in one sentence."""

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    id: str
    accepted: bool
    message: str


@dataclass(frozen=True)
class Observations:
    """Everything decide() may look at besides policy, state and now.

    ``route``: the live weights read from the route, None when unreadable (``route_problem`` says
    why). ``match``: the A/B step's managed route or rule as read with the route (None: there is
    none; the runtime reads it when ``reads_match`` says the run may have one). ``write_problem``:
    how the last write the runtime attempted failed; ``write_landed``: the weights of the last
    write the runtime saw stored by the API server (both None: no write since the last tick, or the
    process restarted). ``reading``: the latest counter reading of the metrics (None: not measured
    on this tick).
    """

    route: Weights | None = None
    match: RouteMatch | None = None
    route_problem: RouteProblem | None = None
    write_problem: RouteProblem | None = None
    write_landed: Weights | None = None
    reading: Reading | None = None
    commands: tuple[Command, ...] = ()
    may_start: bool = True  # False when the concurrency cap is reached


@dataclass(frozen=True)
class RolloutState:
    """All progress of one rollout; persisted in the Rollout status, restored after restarts.

    ``desired`` is what the engine wants the route to carry, ``observed`` what it last read there
    (status reports ``observed``: never a weight the route does not have). ``weight_since`` is when
    the route was first seen carrying the current step's weight; the step's minimum time and
    the judge's at-weight data both count from it. ``match``/``match_observed``/``match_pending``
    are the same three for an A/B step's managed route (None: no managed route); the route
    carries what rollout wants only when both the weights and the managed route do.
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    phase: Phase = Phase.PENDING
    revision: str = ""
    stable_backend: str = ""  # the two backends and the route this run moves (set when it starts)
    canary_backend: str = ""
    router: RouterSpec | None = None
    route_namespace: str = ""
    step: int = 0  # index into policy.spec.steps (0-based; people see step + 1)
    desired: Weights = STABLE_ONLY
    observed: Weights | None = None
    pending: PendingWrite | None = None
    match: RouteMatch | None = None  # the managed route of an A/B step rollout wants (None: none)
    match_observed: RouteMatch | None = None  # as last read (None: none exists)
    match_pending: PendingMatch | None = None
    route_problem: RouteProblem | None = None  # the problem currently reported (a condition)
    route_problem_since: datetime | None = None
    run_started_at: datetime | None = None
    step_started_at: datetime | None = None
    weight_since: datetime | None = None
    unavailable_since: datetime | None = None
    pause_reason: PauseReason | None = None
    pause_detail: str = ""
    approval_requested_at: datetime | None = None
    approved_by: str = ""  # who approved the pending gate (cleared when the run moves past it)
    approvals: tuple[str, ...] = ()  # every approval of this run: "step N: who"
    judge: JudgeMemory = field(default_factory=JudgeMemory)
    baseline: Reading | None = None  # the counter reading the judge absorbed last
    verdict: Verdict | None = None
    verdict_step: int = -1  # the step index the verdict was given at
    promotable: bool = False  # the last setWeight step passed on a verdict with enough data
    judged_at: datetime | None = None
    message: str = ""
    end_reason: str = ""  # why the run is rolling/rolled back or was promoted early
    aborted_by: str = ""  # who aborted (Aborted instead of RolledBack)
    handled_commands: tuple[str, ...] = ()  # ids of operator commands already acted on (bounded)
    notified: tuple[str, ...] = ()  # keys of notifications already sent this run (bounded)
    thread: ChatThread | None = None  # the run's chat thread, once the notifier posted it (runtime-recorded)

    @property
    def number(self) -> int:
        """The current step as people count it (1-based)."""
        return self.step + 1

    @property
    def run_id(self) -> str:
        """The identity of the current run (revision and start time); empty before a run started."""
        if self.run_started_at is None:
            return ""
        return f"{self.revision}@{self.run_started_at.isoformat()}"

    @property
    def share(self) -> int | None:
        """The canary's share of requests (percent) as the route carries it; None when a managed
        route sends it the requests that match, a share nobody knows until traffic arrives."""
        if self.match_observed is not None:
            return None
        return self.observed.canary if self.observed is not None else 0

    @property
    def desired_share(self) -> int | None:
        """The canary's share rollout wants (None: an A/B step's match, share unknown)."""
        return None if self.match is not None else self.desired.canary

    @property
    def in_place(self) -> bool:
        """The route carries what rollout wants: its weights and its managed route, nothing pending."""
        return (
            self.pending is None
            and self.match_pending is None
            and self.observed == self.desired
            and self.match_observed == self.match
        )


def reads_match(state: RolloutState, uses_match: bool) -> bool:
    """Whether the runtime must read the managed route on this tick: the policy has match steps
    (``uses_match``), or the state says one may exist (wanted, seen or being written)."""
    return uses_match or state.match is not None or state.match_observed is not None or state.match_pending is not None
