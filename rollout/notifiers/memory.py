"""An in-memory notifier: records every notification, approval request and update (simulator, tests)."""

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

    def notify(self, rollout: str, note: Notify) -> None:
        self.notes.append((rollout, note))

    def request_approval(self, rollout: str, request: RequestApproval) -> None:
        self.approvals.append((rollout, request))

    def approval_resolved(self, rollout: str, resolved: ApprovalResolved) -> None:
        self.resolved.append((rollout, resolved))

    def update(self, snapshot: RolloutSnapshot) -> None:
        self.updates.append(snapshot)
