"""An in-memory notifier: records every notification and approval request (simulator, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rollout.core.actions import Notify, RequestApproval


@dataclass
class MemoryNotifier:
    notes: list[tuple[str, Notify]] = field(default_factory=list)
    approvals: list[tuple[str, RequestApproval]] = field(default_factory=list)

    def notify(self, rollout: str, note: Notify) -> None:
        self.notes.append((rollout, note))

    def request_approval(self, rollout: str, request: RequestApproval) -> None:
        self.approvals.append((rollout, request))
