"""A notifier that delivers nothing, for daemons without Slack: the log and status still say it all."""

from __future__ import annotations

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval
from rollout.notifiers.base import RolloutSnapshot


class NullNotifier:
    def notify(self, rollout: str, note: Notify) -> None:
        del rollout, note

    def request_approval(self, rollout: str, request: RequestApproval) -> None:
        del rollout, request

    def approval_resolved(self, rollout: str, resolved: ApprovalResolved) -> None:
        del rollout, resolved

    def update(self, snapshot: RolloutSnapshot) -> None:
        del snapshot
