"""The Notifier Protocol: tell people what happened and ask them for approvals.

Owns the contract between the runtime and a chat backend. A notifier delivers; it never decides.
Answers to approval requests come back to the engine as operator ``Command``s.
"""

from __future__ import annotations

from typing import Protocol

from rollout.core.actions import Notify, RequestApproval


class Notifier(Protocol):
    def notify(self, rollout: str, note: Notify) -> None:
        """Deliver ``note`` about the rollout ``namespace/name``; raise ``NotifierError`` on failure."""
        ...

    def request_approval(self, rollout: str, request: RequestApproval) -> None:
        """Ask the approvers; the answer arrives later as an ``approve`` or ``abort`` command."""
        ...
