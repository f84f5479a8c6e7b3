"""The Notifier contract over every backend: MemoryNotifier, NullNotifier and SlackNotifier (on the
Slack stand-in) accept the same notes and approval requests (each delivered once, or never for the null one);
the factories' ``Notifier`` return type makes mypy check that each class satisfies the Protocol."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rollout.core.actions import Level, Notify, RequestApproval
from rollout.core.verdicts import Verdict, VerdictKind
from rollout.notifiers.base import Notifier
from rollout.notifiers.memory import MemoryNotifier
from rollout.notifiers.null import NullNotifier
from rollout.notifiers.slack import SlackNotifier
from tests.harness.slack import SlackStandIn

NOTE = Notify(
    "step-2",
    "rollout.step",
    Level.WARNING,
    "holding at 25%: not enough data",
    Verdict(VerdictKind.HOLD, (), enough_data=False, summary="120 requests < 200"),
)
REQUEST = RequestApproval("approval-3", 3, "approve 50%?", approvers=("U012AB3CD",), channel="#deploys")


def _memory(api: SlackStandIn, token: str) -> tuple[Notifier, Callable[[], int]]:
    m = MemoryNotifier()
    return m, lambda: len(m.notes) + len(m.approvals)


def _null(api: SlackStandIn, token: str) -> tuple[Notifier, Callable[[], int]]:
    return NullNotifier(), lambda: len(api.calls)  # delivers nothing, anywhere


def _slack(api: SlackStandIn, token: str) -> tuple[Notifier, Callable[[], int]]:
    n = SlackNotifier.connect(token, base_url=api.base_url, default_channel="#deploys")
    return n, lambda: len(api.messages)


@pytest.mark.parametrize(
    ("make", "deliveries"), [(_memory, 2), (_null, 0), (_slack, 2)], ids=["memory", "null", "slack"]
)
def test_every_notifier_takes_notes_and_approval_requests(
    make: Callable[[SlackStandIn, str], tuple[Notifier, Callable[[], int]]],
    deliveries: int,
    slack_api: SlackStandIn,
    slack_token: str,
) -> None:
    notifier, delivered = make(slack_api, slack_token)
    notifier.notify("default/app", NOTE)
    notifier.request_approval("default/app", REQUEST)
    assert delivered() == deliveries
