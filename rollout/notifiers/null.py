"""A notifier that delivers nothing, for daemons without Slack: the log and status still say it all."""

from __future__ import annotations

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval
from rollout.notifiers.base import RolloutSnapshot


class NullNotifier:
    def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None:
        del snapshot, note

    def request_approval(self, snapshot: RolloutSnapshot, request: RequestApproval) -> None:
        del snapshot, request

    def approval_resolved(self, snapshot: RolloutSnapshot, resolved: ApprovalResolved) -> None:
        del snapshot, resolved

    def update(self, snapshot: RolloutSnapshot) -> None:
        del snapshot

    def respond(self, response_url: str, text: str) -> None:
        del response_url, text
