"""An in-memory notifier: records every notification, approval request, update and answer (simulator, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval
from rollout.notifiers.base import RolloutSnapshot


@dataclass
class MemoryNotifier:
    notes: list[tuple[str, Notify]] = field(default_factory=list)
    approvals: list[tuple[str, RequestApproval]] = field(default_factory=list)
    resolved: list[tuple[str, ApprovalResolved]] = field(default_factory=list)
    updates: list[RolloutSnapshot] = field(default_factory=list)
    answers: list[tuple[str, str]] = field(default_factory=list)

    def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None:
        self.notes.append((snapshot.rollout, note))

    def request_approval(self, snapshot: RolloutSnapshot, request: RequestApproval) -> None:
        self.approvals.append((snapshot.rollout, request))

    def approval_resolved(self, snapshot: RolloutSnapshot, resolved: ApprovalResolved) -> None:
        self.resolved.append((snapshot.rollout, resolved))

    def update(self, snapshot: RolloutSnapshot) -> None:
        self.updates.append(snapshot)

    def respond(self, response_url: str, text: str) -> None:
        self.answers.append((response_url, text))
