"""The Notifier contract over every backend: MemoryNotifier, NullNotifier and SlackNotifier (on the
Slack stand-in) accept the same notes, approval requests, resolutions, refreshes and answers (each
delivered once, or never for the null one); the factories' ``Notifier`` return type makes mypy
check that each class satisfies the Protocol."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rollout.core.actions import ApprovalResolved, Level, Notify, RequestApproval, Resolution
from rollout.core.verdicts import Verdict, VerdictKind
from rollout.notifiers.base import Notifier
from rollout.notifiers.memory import MemoryNotifier
from rollout.notifiers.null import NullNotifier
from rollout.notifiers.slack import SlackNotifier
from tests.harness.slack import SlackStandIn
from tests.notifiers.samples import BASE

NOTE = Notify(
    "step-2",
    "rollout.step",
    Level.WARNING,
    "holding at 25%: not enough data",
    Verdict(VerdictKind.HOLD, (), enough_data=False, summary="120 requests < 200"),
)
REQUEST = RequestApproval("approval-3", 3, "approve 50%?", approvers=("U012AB3CD",), channel="#deploys")
RESOLVED = ApprovalResolved("approval-3", 3, Resolution.APPROVED, by="U012AB3CD")


def _memory(api: SlackStandIn, token: str) -> tuple[Notifier, Callable[[], int]]:
    m = MemoryNotifier()
    return m, lambda: len(m.notes) + len(m.approvals) + len(m.resolved) + len(m.updates) + len(m.answers)


def _null(api: SlackStandIn, token: str) -> tuple[Notifier, Callable[[], int]]:
    return NullNotifier(), lambda: len(api.calls) + len(api.responses)  # delivers nothing, anywhere


def _slack(api: SlackStandIn, token: str) -> tuple[Notifier, Callable[[], int]]:
    n = SlackNotifier.connect(token, base_url=api.base_url, default_channel="#deploys", response_prefix=api.hooks)
    # parent, note, request (posts); resolution and refresh (updates in place); the answer
    return n, lambda: len(api.messages) + sum(len(m.updates) for m in api.messages) + len(api.responses)


@pytest.mark.parametrize(
    ("make", "deliveries"), [(_memory, 5), (_null, 0), (_slack, 6)], ids=["memory", "null", "slack"]
)
def test_every_notifier_takes_every_call(
    make: Callable[[SlackStandIn, str], tuple[Notifier, Callable[[], int]]],
    deliveries: int,
    slack_api: SlackStandIn,
    slack_token: str,
) -> None:
    notifier, delivered = make(slack_api, slack_token)
    notifier.notify(BASE, NOTE)
    notifier.request_approval(BASE, REQUEST)
    notifier.approval_resolved(BASE, RESOLVED)
    notifier.update(BASE.__class__(**{**BASE.__dict__, "step": 2}))
    notifier.respond(f"{slack_api.hooks}actions/T0/1/abc", "You approved step 3.")
    assert delivered() == deliveries
