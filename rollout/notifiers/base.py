"""The Notifier Protocol: tell people what happened and ask them for approvals.

Owns the contract between the runtime and a chat backend. A notifier delivers; it never decides.
Answers to approval requests come back to the engine as operator ``Command``s. Calls come from one
sender thread (``rollout.runtime.delivering``), in order, and may raise ``NotifierError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval


@dataclass(frozen=True)
class RolloutSnapshot:
    """What a rollout looks like now, for a message that always shows its current state."""

    rollout: str  # namespace/name
    revision: str
    phase: str
    step: int  # 1-based
    steps: int
    canary_weight: int  # what the route carries
    stable_weight: int
    desired_canary_weight: int
    message: str  # the decision sentence
    verdict: str  # the last verdict in one line
    stable: str
    canary: str


class Notifier(Protocol):
    def notify(self, rollout: str, note: Notify) -> None:
        """Deliver ``note`` about the rollout ``namespace/name``; raise ``NotifierError`` on failure."""
        ...

    def request_approval(self, rollout: str, request: RequestApproval) -> None:
        """Ask the approvers; the answer arrives later as an ``approve`` or ``abort`` command."""
        ...

    def approval_resolved(self, rollout: str, resolved: ApprovalResolved) -> None:
        """An approval request was answered or is no longer asked: say so where it was asked."""
        ...

    def update(self, snapshot: RolloutSnapshot) -> None:
        """The rollout's state changed (phase, step, weights, verdict): refresh what shows it."""
        ...
