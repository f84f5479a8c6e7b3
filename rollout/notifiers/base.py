"""The Notifier Protocol: tell people what happened and ask them for approvals.

Owns the contract between the runtime and a chat backend, and ``RolloutSnapshot``: what a rollout
looks like at the moment of a decision, which every call carries (so a notifier can render the
run's parent message, find the run's thread, and route to the policy's channels without reading
anything). A notifier delivers; it never decides. Answers to approval requests come back to the
engine as operator ``Command``s. Calls come from one sender thread (``rollout.runtime.delivering``),
in order, and may raise ``NotifierError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval
from rollout.core.commanding import approval_key
from rollout.core.states import ChatThread, Phase, RolloutState
from rollout.core.verdicts import Verdict
from rollout.policy.models import Rollout


@dataclass(frozen=True)
class RolloutSnapshot:
    """What a rollout looks like now, for a message that always shows its current state.

    ``run`` identifies the run (``RolloutState.run_id``; empty before the first run): one thread
    per run. ``thread`` is the run's thread as persisted in status (None: not recorded yet).
    ``channel``/``approval_channel`` are the policy's notification and approval channels;
    ``approval`` is the key of the approval request pending now (empty: none).
    """

    rollout: str  # namespace/name
    run: str
    revision: str
    phase: str  # as status shows it (Invalid included)
    step: int  # 1-based
    steps: int
    canary_weight: int  # what the route carries
    stable_weight: int
    desired_canary_weight: int
    message: str  # the decision sentence
    verdict: Verdict | None
    stable: str
    canary: str
    at: datetime  # when this was decided
    channel: str | None = None
    approval_channel: str | None = None
    approval: str = ""
    approvers: tuple[str, ...] = ()
    thread: ChatThread | None = None
    end_reason: str = ""

    @property
    def namespace(self) -> str:
        return self.rollout.partition("/")[0]

    @property
    def name(self) -> str:
        return self.rollout.partition("/")[2]


def snapshot_of(
    key: str, state: RolloutState, status: Mapping[str, Any], policy: Rollout | None, now: datetime
) -> RolloutSnapshot:
    """The snapshot of rollout ``key`` after a decision (``status``: as written or read)."""
    notifications = policy.spec.notifications.slack if policy is not None else None
    approvals = policy.spec.approvals.slack if policy is not None else None
    awaiting = state.phase is Phase.AWAITING_APPROVAL and state.approval_requested_at is not None
    return RolloutSnapshot(
        rollout=key,
        run=state.run_id,
        revision=state.revision,
        phase=str(status.get("phase") or state.phase.value),
        step=state.number,
        steps=int(status.get("steps") or (len(policy.spec.steps) if policy is not None else 0)),
        canary_weight=state.observed.canary if state.observed else 0,
        stable_weight=state.observed.stable if state.observed else 100,
        desired_canary_weight=state.desired.canary,
        message=state.message,
        verdict=state.verdict,
        stable=state.stable_backend or (policy.spec.stable if policy is not None else ""),
        canary=state.canary_backend or (policy.spec.canary if policy is not None else ""),
        at=now,
        channel=notifications.channel if notifications is not None else None,
        approval_channel=approvals.channel if approvals is not None else None,
        approval=approval_key(state) if awaiting else "",
        approvers=tuple(approvals.approvers) if approvals is not None else (),
        thread=state.thread,
        end_reason=state.end_reason,
    )


class Notifier(Protocol):
    def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None:
        """Deliver ``note`` about the rollout; raise ``NotifierError`` on failure."""
        ...

    def request_approval(self, snapshot: RolloutSnapshot, request: RequestApproval) -> None:
        """Ask the approvers; the answer arrives later as an ``approve`` or ``abort`` command."""
        ...

    def approval_resolved(self, snapshot: RolloutSnapshot, resolved: ApprovalResolved) -> None:
        """An approval request was answered or is no longer asked: say so where it was asked."""
        ...

    def update(self, snapshot: RolloutSnapshot) -> None:
        """The rollout's state changed (phase, step, weights, verdict): refresh what shows it."""
        ...

    def respond(self, response_url: str, text: str) -> None:
        """Answer one person privately (Slack: an ephemeral message through a click's ``response_url``)."""
        ...
